"""Where `alembic-preflight verify` spends its time: cProfile in the verifier and in every
worker process it spawns (the workers run the user's env.py and migrations).

    .venv/bin/python bench/profile_verify.py --revisions 200 [--checks stepwise] [--top 25]

The workers are `multiprocessing` spawn children, out of reach of `python -m cProfile`:
a sitecustomize.py on PYTHONPATH wraps `alembic_preflight.worker.main.worker_main` in a
profiler in every process that imports it, and writes one .prof per process. The verifier
runs against one embedded server given with --database url, as bench/run.py runs it.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from generate_real import generate as generate_real

from alembic_preflight.database.embedded import start_embedded

SITECUSTOMIZE = """\
import cProfile, functools, os

def _install():
    import alembic_preflight.worker.main as runner

    original = runner.worker_main

    profile = cProfile.Profile()

    def dump():
        profile.disable()
        profile.dump_stats(os.path.join(os.environ["PREFLIGHT_PROFILE_DIR"],
                                        f"worker-{os.getpid()}.prof"))

    real_exit = os._exit

    def exit_after_dump(code):  # the worker leaves with os._exit when told to stop
        dump()
        real_exit(code)

    os._exit = exit_after_dump

    @functools.wraps(original)
    def worker_main(*args, **kwargs):
        try:
            return profile.runcall(original, *args, **kwargs)
        finally:
            dump()

    runner.worker_main = worker_main

if os.environ.get("PREFLIGHT_PROFILE_DIR"):
    _install()
"""


# The verifier leaves with os._exit (cli.run), which `python -m cProfile` never sees.
VERIFIER = """\
import cProfile, os, sys
from alembic_preflight import cli

profile = cProfile.Profile()
real_exit = os._exit

def leave(code):
    profile.disable()
    profile.dump_stats(os.environ["PREFLIGHT_VERIFIER_PROFILE"])
    real_exit(code)

os._exit = leave
sys.argv = ["alembic-preflight", *sys.argv[1:]]
profile.enable()
cli.run()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--real", action="store_true", help="generate_real's defect history")
    parser.add_argument(
        "--linear", action="store_true", help="no branch and merge (as run.py --linear)"
    )
    parser.add_argument("--checks", default=None, help="--checks for verify (default: all)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    kind = "real" if args.real else "r"
    out = args.out / f"profile-{kind}{args.revisions}-{args.checks or 'default'}"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.prof"):
        old.unlink()
    project = Path(__file__).resolve().parent / "generated" / f"{kind}{args.revisions}"
    if args.real:
        generate_real(project, args.revisions)
    else:
        generate(project, args.revisions, seed=args.seed, branches=not args.linear)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(project)], check=True)
    # the hooks' directory goes with the server, Ctrl-C included (it was left in /tmp)
    with tempfile.TemporaryDirectory(prefix="bench-site-") as hooks, start_embedded() as server:
        site = Path(hooks)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        url = server.url("postgres")  # TCP with its password, as bench/run.py gives it
        argv = [sys.executable, "-c", VERIFIER, "verify", str(project)]
        argv += ["--database", "url", "--database-url", url]
        if args.checks:
            argv += ["--checks", args.checks]
        env = dict(os.environ, PREFLIGHT_PROFILE_DIR=str(out), NO_COLOR="1")
        env["PREFLIGHT_VERIFIER_PROFILE"] = str(out / "verifier.prof")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        started = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    print(f"verify exit {proc.returncode} in {wall:.2f} s (under cProfile)")
    print("\n".join(proc.stdout.splitlines()[:14]))
    for prof in sorted(out.glob("*.prof")):
        if prof.stat().st_size < 100:  # a worker killed before it ran (never needed)
            continue
        stream = io.StringIO()
        stats = pstats.Stats(str(prof), stream=stream)
        stats.sort_stats(args.sort).print_stats(args.top)
        text = stream.getvalue()
        (prof.with_suffix(".txt")).write_text(text)
        print(f"\n===== {prof.name}\n" + "\n".join(text.splitlines()[: args.top + 12]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
