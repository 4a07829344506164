"""bench/generate.py must write correct histories: the benchmark's verdicts (no false
positives in the verifier, differences in other tools) mean nothing otherwise."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.conftest import load_script, run_cli


def _generator() -> ModuleType:
    return load_script("bench/generate.py")


def _files(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*.py"))}


def test_same_seed_same_project(tmp_path: Path) -> None:
    gen = _generator()
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gen.generate(a, 45, seed=3)
    gen.generate(b, 45, seed=3)
    gen.generate(c, 45, seed=4)
    assert _files(a) == _files(b)
    assert _files(a) != _files(c)
    assert len(list((a / "migrations" / "versions").glob("*.py"))) == 45


def test_generated_history_passes_the_verifier(tmp_path: Path) -> None:
    # 30 revisions: past the first branch and merge (revisions 21-23)
    generated = _generator().generate(tmp_path / "proj", 30, seed=11)
    assert generated.revisions == 30 and generated.merges == 1 and len(generated.heads) == 1
    result = run_cli(
        "verify",
        generated.path,
        "--database",
        "embedded",
        "--checks",
        "graph,upgrade,drift,roundtrip",
    )
    assert result.code == 0, result.stdout + result.stderr
    assert result.findings() == [], result.stdout
    assert [c["status"] for c in result.report["checks"]] == ["passed"] * 4  # type: ignore[index]
