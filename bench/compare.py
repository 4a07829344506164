"""A change against the code before it: `alembic-preflight verify` in interleaved pairs.

    .venv/bin/python bench/compare.py --base HEAD~1 --size 100 --linear -- --checks stepwise
    .venv/bin/python bench/compare.py --base 4688785 --project path/to/project --pairs 12

Why: this VM's speed moves by up to a third within minutes, by more than most changes
save, so run.py's ratios cannot tell a change's own effect. Here each pair runs the base
and this checkout one right after the other, on one embedded PostgreSQL (the order
alternating from pair to pair), and the change is judged by the pairs: the medians, the
median of the pairs' differences, and how many pairs it won. Each run's CPU is summed
over every process of it (the verifier and its workers, from our children's rusage; the
server's postmaster, its backends and auxiliary processes, from /proc), which the VM's
phase moves less than the time. Both sides' findings are compared as well.

The base is `git archive BASE src` extracted into a temporary directory, put first on
PYTHONPATH: the same interpreter and dependencies run both sides. Both sides' modules are
byte-compiled first, as run.py compiles the tool's. Nothing is left behind: the
directory, the server and each run's database go at the end, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

from alembic_preflight.database.embedded import start_embedded

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    side: str  # "base" or "new"
    seconds: float
    code: int
    tool_cpu: float  # the verifier and its workers
    server_cpu: float
    findings: tuple[tuple[str, str, str, str], ...] | None  # (check, rule, revision, severity)

    @property
    def cpu(self) -> float:
        return self.tool_cpu + self.server_cpu


def extract_base(rev: str, into: Path) -> Path:
    """`src/` of commit `rev`, extracted under `into`; its path."""
    tar = subprocess.run(
        ["git", "archive", "--format=tar", rev, "src"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / "src"


def _stat(pid: int) -> list[str]:
    # the fields after the command's name, which may hold spaces and parentheses
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def server_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its children now alive, and those it has reaped
    (a run's backends, once they have ended)."""
    own = _stat(postmaster)
    ticks = sum(int(own[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(int(entry))
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == postmaster:  # (its ppid)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _findings(report: Path) -> tuple[tuple[str, str, str, str], ...] | None:
    if not report.exists():
        return None
    data = json.loads(report.read_text())
    return tuple(
        sorted(
            (f["check"], f["rule"], str(f.get("revision")), f["severity"]) for f in data["findings"]
        )
    )


def run_once(
    side: str,
    project: Path,
    url: str,
    args: list[str],
    pythonpath: Path | None,
    postmaster: int,
    scratch: Path,
) -> Run:
    report = scratch / f"report-{side}.json"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    argv = [str(BIN / "python"), "-m", "alembic_preflight", "verify", str(project)]
    argv += ["--database", "url", "--database-url", url, "--report-json", str(report), *args]
    tool0, server0 = children_cpu(), server_cpu(postmaster)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    time.sleep(0.2)  # the run's backends end and are reaped
    return Run(
        side,
        seconds,
        done.returncode,
        children_cpu() - tool0,
        server_cpu(postmaster) - server0,
        _findings(report),
    )


def summary(runs: list[Run]) -> str:
    base = [r for r in runs if r.side == "base"]
    new = [r for r in runs if r.side == "new"]
    lines = [f"{'':18}{'base':>10}{'new':>10}{'new - base (pairs)':>22}{'new won':>10}"]
    for label, value in (
        ("wall, s", lambda r: r.seconds),
        ("CPU, s", lambda r: r.cpu),
        ("  verifier, s", lambda r: r.tool_cpu),
        ("  server, s", lambda r: r.server_cpu),
    ):
        diffs = [value(n) - value(b) for b, n in zip(base, new, strict=True)]
        won = sum(d < 0 for d in diffs)
        lines.append(
            f"{label:18}{statistics.median(map(value, base)):>10.3f}"
            f"{statistics.median(map(value, new)):>10.3f}"
            f"{statistics.median(diffs):>+22.3f}{f'{won}/{len(diffs)}':>10}"
        )
    codes = {r.code for r in runs}
    lines.append(f"exit codes: {sorted(codes)}")
    missing = sum(r.findings is None for r in runs)
    if missing:
        lines.append(f"findings: {missing} run(s) wrote no report (see the exit codes)")
        return "\n".join(lines)
    first = runs[0].findings
    assert first is not None
    if all(r.findings == first for r in runs):
        lines.append(f"findings: the same on both sides ({len(first)})")
    else:
        lines.append("findings: DIFFER between the sides (or from run to run)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="alembic-preflight verify, this checkout against --base, in interleaved pairs"
    )
    parser.add_argument("--base", required=True, help="the commit to compare with (git rev)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", type=Path, help="an Alembic project to verify")
    where.add_argument("--size", type=int, help="a generated history of this many revisions")
    parser.add_argument("--linear", action="store_true", help="(--size) no branches")
    parser.add_argument("--seed", type=int, default=7, help="(--size) the generator's seed")
    parser.add_argument("--pairs", type=int, default=8, help="runs of each side, in turn")
    parser.add_argument("verify_args", nargs="*", help="after --: arguments of verify")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    try:
        return _compare(parser, args)
    except KeyboardInterrupt:  # what was made is gone by now (the with blocks)
        print("interrupted", file=sys.stderr)
        return 130


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        scratch = Path(tmp)
        try:
            base_src = extract_base(args.base, scratch / "base")
        except subprocess.CalledProcessError as e:
            parser.error(f"--base {args.base}: {e.stderr.decode(errors='replace').strip()}")
        if args.project is not None:
            project = args.project.resolve()
        else:
            project = scratch / "project"
            generate(project, args.size, seed=args.seed, branches=not args.linear)
        import alembic_preflight

        here = Path(alembic_preflight.__file__).resolve().parent
        for tree in (base_src, here, project):
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)
        with (
            start_embedded() as server,
            psycopg.connect(server.conninfo("postgres"), autocommit=True) as admin,
        ):
            backend = admin.execute("SELECT pg_backend_pid()").fetchone()
            assert backend is not None
            postmaster = int(_stat(int(backend[0]))[1])
            url = server.url("postgres")
            runs: list[Run] = []
            for i in range(args.pairs):
                order = [("base", base_src), ("new", None)]
                for side, path in order if i % 2 == 0 else reversed(order):
                    run = run_once(side, project, url, args.verify_args, path, postmaster, scratch)
                    runs.append(run)
                    print(
                        f"pair {i + 1} {side:4s} exit {run.code} {run.seconds:7.3f} s, "
                        f"CPU {run.tool_cpu:.2f} + {run.server_cpu:.2f} s",
                        flush=True,
                    )
    print(f"\n{args.base} (base) against this checkout, {args.pairs} pairs:")
    print(summary(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
