"""Write requirements-image.txt: every package the image installs, pinned with ==.

    make lock-image        (or: .venv/bin/python scripts/lock_image_requirements.py)

Resolves pyproject.toml's `dependencies` (and their dependencies) against PyPI with pip's
own resolver, without installing anything (`pip install --dry-run --report`), and writes one
`name==version` line per package. The Dockerfile installs that file with `--no-deps`, so the
image gets exactly these versions, and `pip check` in the build fails if one is missing.
tests/test_image_requirements.py fails when pyproject.toml asks for a package the file does not pin,
or for a version its pin does not satisfy: run this again then.

The image also holds back what IMAGE_CONSTRAINTS names (pip's constraints: they add no
package). The image is a closed environment; pyproject.toml cannot bound what it names from
above, as the verifier is installed beside a project's own dependencies (README, Install).

It must run on the image's Python (3.11, Debian bookworm's): environment markers
(`python_version < "3.11"`) are judged by the interpreter that resolves. pip's configuration
and PIP_* variables are ignored (--isolated): the image's pins come from PyPI, not from a
mirror or a constraints file of this machine. Another index: --index-url URL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-image.txt"
IMAGE_PYTHON = (3, 11)  # python3 in debian:bookworm-slim, the Dockerfile's base

HEADER = """\
# The image's Python packages, every one pinned (the Dockerfile installs this file with
# --no-deps). Generated from pyproject.toml's dependencies by
#     make lock-image
# (scripts/lock_image_requirements.py, with its IMAGE_CONSTRAINTS); do not edit by hand.
# tests/test_image_requirements.py fails when pyproject.toml's dependencies and these pins
# disagree.
"""


# What the image holds back, and why.
IMAGE_CONSTRAINTS = (
    # typer 0.29 imports pydantic and builds a TypeAdapter for every option at every start:
    # the verifier reached its checks 73 ms later (0.348 s against 0.275 s with 0.28), and
    # the image held pydantic, pydantic-core, annotated-types and typing-inspection for it
    # (issue 21 named Typer's option adapters). The action's `install:` input may move it.
    "typer<0.29",
)


def canonical(name: str) -> str:
    """PEP 503's normal form: `PyYAML` and `pyyaml`, `typing_extensions` and
    `typing-extensions` are one package."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies(pyproject: Path) -> list[str]:
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def resolve(
    requirements: list[str], index_url: str, constraints: tuple[str, ...] = ()
) -> dict[str, str]:
    """name -> version, for everything pip would install into an empty environment."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.in"
        reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        held = Path(tmp) / "constraints.txt"
        held.write_text("".join(f"{c}\n" for c in constraints), encoding="utf-8")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--isolated",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--index-url",
                index_url,
                "--report",
                str(report),
                "-r",
                str(reqs),
                "-c",
                str(held),
            ],
            check=True,
        )
        data = json.loads(report.read_text(encoding="utf-8"))
    return {
        canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in data["install"]
    }


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-url", default="https://pypi.org/simple")
    args = parser.parse_args()
    if sys.version_info[:2] != IMAGE_PYTHON:
        want = ".".join(map(str, IMAGE_PYTHON))
        print(
            f"lock_image_requirements: run this with Python {want}, the image's "
            f"(this is {sys.version.split()[0]}): markers are judged by the resolving Python",
            file=sys.stderr,
        )
        return 2
    pins = resolve(dependencies(ROOT / "pyproject.toml"), args.index_url, IMAGE_CONSTRAINTS)
    LOCK.write_text(render(pins), encoding="utf-8")
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
