"""What the release publishes: the sdist and the wheel `python -m build` makes from a clean
copy of the repository pass `twine check`, and the wheel, installed into a fresh virtualenv
with its dependencies from PyPI, verifies the example project. The same steps as
.github/workflows/release.yml's build job; a minute or two."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, source_snapshot

pytestmark = pytest.mark.slow

# pip and the build's isolated environment download from PyPI: generous on a busy machine
TIMEOUT = 1200


def _run(*argv: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_wheel_installs_and_verifies_the_example(tmp_path: Path) -> None:
    # nothing of this checkout may leak in: not its source on the path, nor its virtualenv
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("GITHUB_")
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1", PYTHONWARNINGS="ignore")
    source = source_snapshot(tmp_path / "source")
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, source, cwd=tmp_path, env=env)
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(dist.iterdir())
    _run(
        sys.executable, "-m", "twine", "check", "--strict", *sdists, *wheels, cwd=tmp_path, env=env
    )

    with tarfile.open(sdists[0]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"README.md", "pyproject.toml", "src/alembic_preflight/py.typed"} <= names
    with zipfile.ZipFile(wheels[0]) as wheel:
        inside = set(wheel.namelist())
        entry_points = next(n for n in inside if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    assert "alembic_preflight/py.typed" in inside
    assert not any(n.startswith(("tests/", "examples/")) for n in inside)
    assert "alembic-preflight = alembic_preflight.__main__:run" in scripts

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    _run(venv / "bin" / "python", "-m", "pip", "install", wheels[0], cwd=tmp_path, env=env)
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import alembic_preflight; print(alembic_preflight.__file__)",
        cwd=tmp_path,
        env=env,
    ).stdout
    assert where.startswith(str(venv)), where

    example = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "project", example)
    verified = _run(
        venv / "bin" / "alembic-preflight",
        "verify",
        example,
        "--database",
        "embedded",
        cwd=tmp_path,
        env=env,
    )
    assert "PASSED" in verified.stdout, verified.stdout
