"""Side-by-side timings: plain Alembic, pytest-alembic and alembic-preflight, one server.

    .venv/bin/python bench/run.py --sizes 50,100,200,1000   # or --quick (50 and 100)

For each size, bench/generate.py writes a correct history, and on ONE embedded
PostgreSQL (started once, as `--database embedded` starts it) each tool gets its own new
database, its URL in DATABASE_URL (env.py reads it):

  (a) alembic        upgrade head; downgrade base; upgrade head; check (4 processes)
  (b) pytest-alembic default tests (single_head_revision, upgrade,
                     model_definitions_match_ddl, up_down_consistency)
  (c) no-trace       pytest-alembic's experimental test_downgrade_leaves_no_trace
  (d) preflight      alembic-preflight verify, default checks (--database url)
  (e) stepwise       alembic-preflight verify --checks stepwise
  (f) floor          offline SQL (upgrade, downgrade, upgrade) piped through psql

With --real, each size is bench/generate_real.py's history full of defects instead (failing
and irreversible downgrades, leftovers, upgrades that fail with rows), and the tools are

  (g) alembic once   one plain `alembic upgrade heads` (it has a labelled second head)
  (d) preflight      as above; its findings compared with the ones the generator expects

pytest-alembic 0.13 does not collect under pytest 9 (`'TestCollector' object has no
attribute '_nodeid'`): when that is so here, (b) and (c) run from bench/.venv-baseline,
made on first use with pytest<9, pytest-alembic 0.13 and this venv's alembic, SQLAlchemy
and psycopg versions, as its users run it.

With --repeat N, the runs go round every size and tool in turn, N times, and each
measurement is the median of its N: both sides of a ratio are timed in the same minutes.
Peak memory (RSS and PSS of the process tree, read from /proc five times a second) is
read during (d)'s runs, the ones its targets name; no other run pays for reading it.

Before timing, each project's .py files are byte-compiled once, so every tool meets the
same warm bytecode cache; so are alembic-preflight's own modules, as pip compiles an
installed package's (the baselines' are). Results go to bench/results/ as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from generate_real import generate as generate_real

from alembic_preflight.database.base import Server
from alembic_preflight.database.embedded import start_embedded
from alembic_preflight.errors import interrupt_on_signal

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
BASELINE_VENV = BENCH / ".venv-baseline"
PSQL = shutil.which("psql") or "/usr/bin/psql"

TOOLS = {
    "a": "alembic CLI (up, down, up, check)",
    "b": "pytest-alembic default tests",
    "c": "pytest-alembic downgrade_leaves_no_trace",
    "d": "alembic-preflight verify (default checks)",
    "e": "alembic-preflight verify --checks stepwise",
    "f": "floor: offline SQL through psql",
    "g": "alembic upgrade heads, once",
}
ORDER = "gfadebc"  # cheap ones first: a slow baseline at 1000 cannot starve the rest

# (a)'s four commands, each timed under a label of its own: keyed by the command alone, the
# second `upgrade head` overwrote the first and (a) summed three of its four runs
CLI_SEQUENCE = (
    ("upgrade head", ["upgrade", "head"]),
    ("downgrade base", ["downgrade", "base"]),
    ("upgrade head again", ["upgrade", "head"]),
    ("check", ["check"]),
)

CONFTEST = """\
import os

import pytest
import sqlalchemy as sa


@pytest.fixture
def alembic_engine():
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    yield engine
    engine.dispose()
"""
PYTEST_DEFAULT_INI = "[pytest]\naddopts = -p no:cacheprovider\n"
PYTEST_NO_TRACE_INI = (
    "[pytest]\naddopts = -p no:cacheprovider\n"
    "pytest_alembic_include_experimental = downgrade_leaves_no_trace\n"
)


@dataclass
class Measurement:
    tool: str
    size: int
    seconds: float | None  # None: did not finish (timeout) or not run
    ok: bool  # exit code as expected for a correct history
    runs: list[float] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    findings: int | None = None  # (d)/(e): findings in the JSON report
    found: list[tuple[str, str, str]] | None = None  # (d)/(e): (check, rule, revision) each
    differences: bool | None = None  # (b)/(c): a test failed on this correct history
    note: str = ""


# --- process helpers -------------------------------------------------------------------


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "INPUT_"))}
    env.update({"DATABASE_URL": url, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"})
    return env


class _RssPoller:
    """Peaks of the summed RSS and PSS of a process and all its descendants, from /proc
    (5 Hz). RSS counts a page shared by several processes in each of them (the second
    worker is a fork of the first; every process maps the same libraries), PSS splits it
    among them: their sum is what the tree takes, their RSS sum an upper bound."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.peak_pss = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> _RssPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            rss, pss = self._sample()
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)

    def _sample(self) -> tuple[int, int]:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # the command name may hold spaces and parentheses: split after the last ")"
            fields = stat[stat.rfind(b")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            p = frontier.pop()
            kids = [c for c, pp in parents.items() if pp == p and c not in tree]
            tree.update(kids)
            frontier.extend(kids)
        total = pss = 0
        for p in tree:
            try:
                with open(f"/proc/{p}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * self._page
                with open(f"/proc/{p}/smaps_rollup", "rb") as f:
                    pss += next(
                        int(line.split()[1]) * 1024 for line in f if line.startswith(b"Pss:")
                    )
            except (OSError, IndexError, ValueError, StopIteration):
                continue
        return total, pss


@dataclass
class _Run:
    seconds: float
    code: int | None  # None: timed out
    stdout: str
    stderr: str
    peak_rss: int = 0
    peak_pss: int = 0


def _timed(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    *,
    rss: bool = False,
    stdin_path: Path | None = None,
    stdout_path: Path | None = None,
) -> _Run:
    out_file = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115
    in_file = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=in_file or subprocess.DEVNULL,
            stdout=out_file or subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        poller = _RssPoller(proc.pid) if rss else None
        if poller:
            poller.__enter__()
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            code = None
        except BaseException:
            # Ctrl-C or SIGTERM (see main): the tool runs in a session of its own, which
            # neither reaches, and would go on against a server about to stop
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if poller:
                poller.__exit__()
            raise
        seconds = time.perf_counter() - started
        if poller:
            poller.__exit__()
        return _Run(
            seconds,
            code,
            (stdout or b"").decode(errors="replace"),
            (stderr or b"").decode(errors="replace"),
            poller.peak if poller else 0,
            poller.peak_pss if poller else 0,
        )
    finally:
        for f in (out_file, in_file):
            if f is not None:
                f.close()


# --- the server ------------------------------------------------------------------------


class Bench:
    def __init__(self, server: Server, timeout: float, workdir: Path) -> None:
        self.server, self.timeout, self.workdir = server, timeout, workdir
        self.admin = psycopg.connect(server.conninfo(), autocommit=True)
        self.count = 0
        self.baseline_python: Path | None = None

    def fresh_db(self, label: str) -> str:
        self.count += 1
        name = f"bench_{label}_{self.count}"
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_db(self, name: str) -> None:
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def drop_leftovers(self) -> None:
        """The verifier leaves its preflight_* databases to a url server's owner on a crash."""
        rows = self.admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'preflight%' OR datname LIKE "
            "'bench%'"
        ).fetchall()
        for (name,) in rows:
            self.drop_db(name)

    # (a) ---------------------------------------------------------------------------------
    def alembic_cli(self, project: Path, size: int) -> Measurement:
        db = self.fresh_db("a")
        env = _env(self.server.url(db))
        steps: dict[str, float] = {}
        ok, note = True, ""
        for label, cmd in CLI_SEQUENCE:
            run = _timed([str(BIN / "alembic"), *cmd], project, env, self.timeout)
            steps[label] = round(run.seconds, 3)
            if run.code != 0:
                ok, note = False, f"alembic {' '.join(cmd)}: {_tail(run.stderr)}"
                break
        self.drop_db(db)
        return Measurement("a", size, round(sum(steps.values()), 3), ok, steps=steps, note=note)

    # (g) ---------------------------------------------------------------------------------
    def alembic_once(self, project: Path, size: int) -> Measurement:
        db = self.fresh_db("g")
        run = _timed(
            [str(BIN / "alembic"), "upgrade", "heads"],
            project,
            _env(self.server.url(db)),
            self.timeout,
        )
        self.drop_db(db)
        note = "" if run.code == 0 else f"alembic upgrade heads: {_tail(run.stderr)}"
        return Measurement("g", size, round(run.seconds, 3), run.code == 0, note=note)

    # (b), (c) ----------------------------------------------------------------------------
    def pytest_alembic(self, project: Path, size: int, tool: str) -> Measurement:
        python = self.baseline()
        ini = project / ("pytest-no-trace.ini" if tool == "c" else "pytest-default.ini")
        argv = [str(python), "-m", "pytest", "-c", str(ini), "--test-alembic", "-q", "-rfE"]
        argv += ["--tb=short", "-W", "ignore::DeprecationWarning"]
        if tool == "c":
            argv += ["-k", "downgrade_leaves_no_trace"]
        db = self.fresh_db(tool)
        run = _timed(argv, project, _env(self.server.url(db)), self.timeout)
        self.drop_db(db)
        if run.code is None:
            return Measurement(tool, size, None, False, note=f"timeout after {self.timeout:.0f} s")
        summary = next(
            (
                ln
                for ln in reversed(run.stdout.splitlines())
                if " in " in ln and any(w in ln for w in ("passed", "failed", "error"))
            ),
            "",
        )
        differences = run.code == 1
        note = summary.strip("= ")
        if differences:
            note += " | " + _first_failure(run.stdout)
        elif run.code not in (0, 1):
            note += " | " + _tail(run.stdout + run.stderr)
        return Measurement(
            tool,
            size,
            round(run.seconds, 3),
            run.code == 0,
            differences=differences if run.code in (0, 1) else None,
            note=note,
        )

    def baseline(self) -> Path:
        """A python where pytest-alembic collects its tests (see the module docstring)."""
        if self.baseline_python is not None:
            return self.baseline_python
        probe = self.workdir / "probe"
        if not probe.exists():
            generate(probe, 3, seed=1)
            _write_pytest_files(probe)
        collect = [str(BIN / "python"), "-m", "pytest", "-c", str(probe / "pytest-default.ini")]
        collect += ["--test-alembic", "--collect-only", "-q"]
        ok = subprocess.run(collect, cwd=probe, capture_output=True, text=True, env=_env("x"))
        if ok.returncode == 0:
            self.baseline_python = BIN / "python"
            return self.baseline_python
        python = BASELINE_VENV / "bin" / "python"
        if not python.exists():
            print(f"pytest-alembic does not collect with this pytest; making {BASELINE_VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(BASELINE_VENV)], check=True)
            pins = [f"{d}=={_version(d)}" for d in ("alembic", "SQLAlchemy")]
            pins.append(f"psycopg[binary]=={_version('psycopg')}")
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "pytest<9",
                    "pytest-alembic==0.13.*",
                    *pins,
                ],
                check=True,
            )
        self.baseline_python = python
        return python

    # (d), (e) ----------------------------------------------------------------------------
    def preflight(self, project: Path, size: int, tool: str) -> Measurement:
        # its report's directory goes whatever the run did (a timeout, a crash, Ctrl-C)
        with tempfile.TemporaryDirectory(prefix="bench-report-") as reports:
            return self._preflight(project, size, tool, Path(reports) / "report.json")

    def _preflight(self, project: Path, size: int, tool: str, report: Path) -> Measurement:
        # the embedded server's TCP address and password, as the other tools get it
        url = self.server.url("postgres")
        argv = [str(BIN / "alembic-preflight"), "verify", str(project), "--database", "url"]
        argv += ["--database-url", url, "--report-json", str(report)]
        if tool == "e":
            argv += ["--checks", "stepwise"]
        # memory is measured where a target names it, (d)'s: reading it costs the run
        # CPU (every /proc entry, each process's smaps, five times a second; +0.02 to
        # 0.04 s of a 1.3 s (e), measured), which the baselines' runs do not pay
        polled = tool == "d"
        run = _timed(argv, project, _env("unused"), self.timeout, rss=polled)
        self.drop_leftovers()
        if run.code is None:
            return Measurement(tool, size, None, False, note=f"timeout after {self.timeout:.0f} s")
        findings = None
        found: list[tuple[str, str, str]] | None = None
        steps: dict[str, float] = {}
        notes = []
        if report.exists():
            data = json.loads(report.read_text())
            findings = len(data["findings"])
            found = sorted((f["check"], f["rule"], f["revision"]) for f in data["findings"])
            for c in data["checks"]:
                steps[c["id"]] = c["duration_s"]
                if c["status"] != "passed":
                    notes.append(f"{c['id']} {c['status']}: {c.get('note') or ''}".strip())
            rules: dict[str, int] = {}
            for f in data["findings"]:
                key = f"{f['severity']} {f['check']}/{f['rule']}"
                rules[key] = rules.get(key, 0) + 1
            notes += [f"{n}× {k}" for k, n in sorted(rules.items())]
        if run.code not in (0, 1):
            notes.append(f"exit {run.code}: {_tail(run.stderr)}")
        return Measurement(
            tool,
            size,
            round(run.seconds, 3),
            run.code == 0,
            steps=steps,
            peak_rss_mb=round(run.peak_rss / 2**20, 1) if polled else None,
            peak_pss_mb=round(run.peak_pss / 2**20, 1) if polled else None,
            findings=findings,
            found=found,
            note="; ".join(notes),
        )

    # (f) ---------------------------------------------------------------------------------
    def floor(self, project: Path, size: int) -> Measurement:
        with tempfile.TemporaryDirectory(prefix="bench-sql-") as scripts:
            return self._floor(project, size, Path(scripts))

    def _floor(self, project: Path, size: int, tmp: Path) -> Measurement:
        db = self.fresh_db("f")
        env = _env(self.server.url(db))
        up, down, again = tmp / "up.sql", tmp / "down.sql", tmp / "up-again.sql"
        steps: dict[str, float] = {}
        ok, note = True, ""
        generate_sql = [
            ("sql upgrade head", ["upgrade", "head", "--sql"], up),
            ("sql downgrade head:base", ["downgrade", "head:base", "--sql"], down),
        ]
        for label, cmd, target in generate_sql:
            alembic = [str(BIN / "alembic"), *cmd]
            run = _timed(alembic, project, env, self.timeout, stdout_path=target)
            steps[label] = round(run.seconds, 3)
            if run.code != 0:
                ok, note = False, f"alembic {' '.join(cmd)}: {_tail(run.stderr)}"
        psql = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.server.host]
        psql += ["-p", str(self.server.port), "-U", self.server.user, "-d", db, "-o", "/dev/null"]
        if ok:
            # the offline downgrade empties alembic_version but keeps the table, which the
            # upgrade script creates
            again.write_bytes(b"DROP TABLE alembic_version;\n" + up.read_bytes())
            psql_env = {**env, "PGPASSWORD": self.server.password or ""}
            for label, path in (("psql up", up), ("psql down", down), ("psql up again", again)):
                run = _timed(psql, project, psql_env, self.timeout, stdin_path=path)
                steps[label] = round(run.seconds, 3)
                if run.code != 0:
                    ok, note = False, f"{label}: {_tail(run.stderr)}"
                    break
        self.drop_db(db)
        psql_only = sum(v for k, v in steps.items() if k.startswith("psql"))
        note = note or f"psql alone {psql_only:.2f} s"
        return Measurement("f", size, round(sum(steps.values()), 3), ok, steps=steps, note=note)

    def measure(self, tool: str, project: Path, size: int) -> Measurement:
        if tool == "a":
            return self.alembic_cli(project, size)
        if tool in "bc":
            return self.pytest_alembic(project, size, tool)
        if tool in "de":
            return self.preflight(project, size, tool)
        if tool == "g":
            return self.alembic_once(project, size)
        return self.floor(project, size)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _tail(text: str, n: int = 300) -> str:
    return " ".join(text.strip().splitlines()[-3:])[-n:]


def _first_failure(stdout: str) -> str:
    """pytest-alembic's message: the first `E ` lines of the first failure."""
    lines = [ln[1:].strip() for ln in stdout.splitlines() if ln.startswith("E ")]
    return " / ".join(ln for ln in lines[:6] if ln)[:400]


def _write_pytest_files(project: Path) -> None:
    (project / "tests").mkdir(exist_ok=True)
    (project / "tests" / "conftest.py").write_text(CONFTEST)
    (project / "pytest-default.ini").write_text(PYTEST_DEFAULT_INI)
    (project / "pytest-no-trace.ini").write_text(PYTEST_NO_TRACE_INI)


# --- embedded start-up -------------------------------------------------------------------


def embedded_ready(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with start_embedded():
            times.append(round(time.perf_counter() - started, 3))
    return times


# --- targets and output ---------------------------------------------------------------


def _median(ms: list[Measurement]) -> Measurement:
    done = [m for m in ms if m.seconds is not None]
    if not done:
        return ms[0]
    best = sorted(done, key=lambda m: m.seconds or 0.0)[len(done) // 2]
    best.runs = [m.seconds for m in done if m.seconds is not None]
    best.seconds = round(statistics.median(best.runs), 3)
    return best


def _ratio(x: float | None, y: float | None) -> float | None:
    # unrounded: a target is met or not by the ratio itself (1.004 is not ≤ 1), and the
    # value is shown to three places
    return x / y if x is not None and y else None


def targets(results: dict[int, dict[str, Measurement]], ready: list[float]) -> list[dict[str, Any]]:
    def sec(size: int, tool: str) -> float | None:
        m = results.get(size, {}).get(tool)
        return m.seconds if m is not None else None

    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, higher: bool, extra: str = "") -> None:
        met = None if value is None else (value >= limit if higher else value <= limit)
        out.append(
            {
                "target": name,
                "value": None if value is None else round(value, 3),
                "limit": f"{'≥' if higher else '≤'} {limit:g}",
                "met": met,
                "note": extra,
            }
        )

    d200 = results.get(200, {}).get("d")
    stepwise_in_d = d200 is not None and "stepwise" in d200.steps
    add(
        "(d)/(a) at 200",
        _ratio(sec(200, "d"), sec(200, "a")),
        1.0,  # issue 21 (was 2 before it)
        False,
        "" if stepwise_in_d or d200 is None else "(d) ran without stepwise",
    )
    c100 = results.get(100, {}).get("c")
    e100 = results.get(100, {}).get("e")
    fp = "" if c100 is None else f"(c) reported differences: {c100.differences}"
    if c100 is not None and c100.differences:
        fp += " and stopped there, so its time is a lower bound"
    if e100 is not None:
        fp += f"; (e) findings: {e100.findings}"
    value = _ratio(sec(100, "c"), sec(100, "e"))
    add("(c)/(e) at 100, zero false positives", value, 15.0, True, fp)
    if out[-1]["met"] and e100 is not None and (e100.findings or 0) > 0:
        out[-1]["met"] = False
    add("(d)@200 / (d)@50", _ratio(sec(200, "d"), sec(50, "d")), 4.4, False)
    add("(d)@1000 / (d)@200", _ratio(sec(1000, "d"), sec(200, "d")), 5.0, False)
    add("embedded ready (median of 5), s", statistics.median(ready) if ready else None, 1.5, False)
    rss = [m.peak_rss_mb for s in results.values() for t, m in s.items() if t == "d"]
    at = results.get(200, {}).get("d")
    add(
        "peak RSS of (d) at 200, MB",
        at.peak_rss_mb if at else None,
        300,
        False,
        "all sizes: " + ", ".join(f"{v}" for v in rss) if rss else "",
    )
    big = results.get(1000, {}).get("d")
    add(
        "peak memory (PSS) of (d) at 1000, MB",
        big.peak_pss_mb if big else None,
        300,
        False,
        f"summed RSS {big.peak_rss_mb}" if big else "",
    )
    return out


def real_targets(results: dict[int, dict[str, Measurement]]) -> list[dict[str, Any]]:
    """--real: the defect history's targets (issue 21), per size."""
    out: list[dict[str, Any]] = []
    for size, by_tool in sorted(results.items()):
        d, g = by_tool.get("d"), by_tool.get("g")
        value = None if d is None or g is None else _ratio(d.seconds, g.seconds)
        note = "" if d is None else ("findings as expected" if d.ok else "**findings differ**")
        out.append(
            {
                "target": f"(d)/(g) on the defect history at {size}",
                "value": None if value is None else round(value, 3),
                "limit": "≤ 4",
                "met": None if value is None else value <= 4 and d is not None and d.ok,
                "note": note,
            }
        )
        if d is not None and d.peak_rss_mb is not None:
            out.append(
                {
                    "target": f"peak RSS of (d) at {size}, MB",
                    "value": d.peak_rss_mb,
                    "limit": "≤ 300",
                    "met": d.peak_rss_mb <= 300,
                    "note": f"PSS {d.peak_pss_mb}",
                }
            )
    return out


def _expected_findings(m: Measurement, expected: list[tuple[str, str, str]]) -> None:
    """--real: (d) is right when its findings are exactly the ones the generator expects."""
    if m.found is None:
        m.ok = False
        return
    # locks' warnings (index builds and rewrites on tables with rows) are real here, but
    # the generator does not model them: they are counted, not compared
    found = [tuple(f) for f in m.found if f[0] != "locks"]
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    m.ok = found == sorted(expected)
    if not m.ok:
        m.note = f"missing {missing[:3]}, extra {extra[:3]}; " + m.note


def markdown(
    results: dict[int, dict[str, Measurement]], tgts: list[dict[str, Any]], meta: dict[str, Any]
) -> str:
    tools = [t for t in "gabcdef" if any(t in r for r in results.values())]
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} CPUs), PostgreSQL "
        f"{meta['postgres']} (embedded, TCP on 127.0.0.1), Python {meta['python']}, "
        f"seed {meta['seed']}, {meta['history']}, median of {meta['repeat']}.",
        "",
        "| revisions | " + " | ".join(f"({t}) {TOOLS[t]}" for t in tools) + " |",
        "|---:|" + "---:|" * len(tools),
    ]
    for size, by_tool in sorted(results.items()):
        cells = []
        for t in tools:
            m = by_tool.get(t)
            if m is None:
                cells.append("–")
            elif m.seconds is None:
                cells.append("timeout")
            else:
                flag = ""
                if m.differences:
                    flag = " ✗ reported differences"
                elif m.findings:
                    flag = f" ({m.findings} findings)"
                elif not m.ok:
                    flag = " ✗ failed"
                cells.append(f"{m.seconds:.1f} s{flag}")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += ["", "| target | value | limit | met |", "|---|---:|---:|:---:|"]
    for tgt in tgts:
        met = {True: "yes", False: "**no**", None: "–"}[tgt["met"]]
        value = "–" if tgt["value"] is None else f"{tgt['value']:g}"
        note = f" ({tgt['note']})" if tgt["note"] else ""
        lines.append(f"| {tgt['target']}{note} | {value} | {tgt['limit']} | {met} |")
    return "\n".join(lines) + "\n"


def _compile_tool() -> None:
    """Byte-compile alembic-preflight's own modules, as pip does when it installs the tool
    (a wheel, the Docker image): the baselines' packages are compiled that way. An editable
    install under PYTHONDONTWRITEBYTECODE=1 (as on these machines) has no bytecode, and
    each of the verifier's processes would compile ~100 modules from source, ~0.1 s each
    (measured), which no installed copy does."""
    import alembic_preflight

    package = Path(alembic_preflight.__file__).resolve().parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200,1000", help="revision counts (comma list)")
    parser.add_argument("--quick", action="store_true", help="sizes 50 and 100 only")
    parser.add_argument("--tools", default="abcdef", help="which of a-f to run (default all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; median")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--linear", action="store_true", help="histories without branch and merge revisions"
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="bench/generate_real.py's defect history; tools (g) and (d) by default",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per measurement")
    parser.add_argument("--ready-runs", type=int, default=5, help="embedded start-ups to time")
    parser.add_argument("--workdir", type=Path, default=BENCH / "generated")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    sizes = [50, 100] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.real:
        tools = [t for t in ORDER if t in (args.tools if args.tools != "abcdef" else "gd")]
        tools = [t for t in tools if t in "gde"]
    else:
        tools = [t for t in ORDER if t in args.tools and t != "g"]

    # SIGTERM unwinds as Ctrl-C does, as the verifier's does: the server stops and the
    # tool running is killed (a second SIGTERM does not cut that short)
    signal.signal(signal.SIGTERM, interrupt_on_signal)
    _compile_tool()
    ready = embedded_ready(args.ready_runs) if args.ready_runs else []
    if ready:
        print(f"embedded PostgreSQL ready: {ready} s (median {statistics.median(ready):.3f} s)")
    results: dict[int, dict[str, Measurement]] = {}
    started = time.perf_counter()
    with start_embedded() as server:
        bench = Bench(server, args.timeout, args.workdir)
        projects: dict[int, tuple[Path, list[tuple[str, str, str]] | None]] = {}
        for size in sizes:
            expected: list[tuple[str, str, str]] | None = None
            if args.real:
                project = args.workdir / f"real{size}"
                made = generate_real(project, size)
                expected = list(made.expected)
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(project)], check=True)
                print(f"== {size} revisions, {len(expected)} expected findings", flush=True)
            else:
                project = args.workdir / f"r{size}{'-linear' if args.linear else ''}"
                g = generate(project, size, seed=args.seed, branches=not args.linear)
                _write_pytest_files(project)
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(project)], check=True)
                print(
                    f"== {size} revisions ({g.merges} merges, {g.tables} tables, {g.enums} enums)",
                    flush=True,
                )
            projects[size] = (project, expected)
        # The repetitions go round every size and tool in turn, not one block after the
        # other: this machine's speed drifts over minutes, and each ratio's two sides are
        # then timed in the same minutes (blocks compared a fast phase with a slow one).
        runs: dict[tuple[int, str], list[Measurement]] = {}
        for _ in range(args.repeat):
            for size in sizes:
                for tool in tools:
                    run = bench.measure(tool, projects[size][0], size)
                    runs.setdefault((size, tool), []).append(run)
        for size in sizes:
            print(f"\n== {size} revisions", flush=True)
            results[size] = {}
            expected = projects[size][1]
            for tool in tools:
                done = runs[(size, tool)]
                if expected is not None and tool in "de":
                    for r in done:
                        _expected_findings(r, expected)
                m = _median(done)
                results[size][tool] = m
                shown = "timeout" if m.seconds is None else f"{m.seconds:8.2f} s"
                extra = (
                    f"  rss {m.peak_rss_mb} MB, pss {m.peak_pss_mb} MB"
                    if m.peak_rss_mb is not None
                    else ""
                )
                print(f"  ({tool}) {TOOLS[tool]:<44} {shown}{extra}  {m.note}"[:400], flush=True)
        version = server.server_version
    tgts = real_targets(results) if args.real else targets(results, ready)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.system()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "postgres": version.split()[0],
        "python": platform.python_version(),
        "seed": args.seed,
        "history": (
            "bench/generate_real.py's defect history"
            if args.real
            else "linear"
            if args.linear
            else "a branch and merge every 40 revisions"
        ),
        "repeat": args.repeat,
        "total_s": round(time.perf_counter() - started, 1),
        "embedded_ready_s": ready,
    }
    md = markdown(results, tgts, meta)
    print("\n" + md)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {
        "meta": meta,
        "tools": TOOLS,
        "results": {str(s): {t: asdict(m) for t, m in r.items()} for s, r in results.items()},
        "targets": tgts,
    }
    for name in (f"bench-{stamp}", "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(md)
    print(f"written: {args.out}/bench-{stamp}.json, .md (and latest.*)")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, after everything has stopped
        raise SystemExit(130) from None
