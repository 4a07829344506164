"""The image's pins (requirements-image.txt) against pyproject.toml's dependencies: every
package asked for is pinned with `==`, at a version the specifier allows, with what its
extras bring. Offline: the pins are read, not installed (the Docker build installs them with
--no-deps and runs `pip check`, the final word on completeness)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT, load_script

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK = ROOT / "requirements-image.txt"
REFRESH = "refresh it: make lock-image"
# what the image runs: python3 of debian:bookworm-slim (scripts/lock_image_requirements.py)
IMAGE_PYTHON = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}


def read_pins(text: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==" and not req.marker, (
            f"{LOCK.name}:{number}: {raw!r} is not an exact pin (name==version); {REFRESH}"
        )
        pins[canonicalize_name(req.name)] = Version(spec[0].version)
    return pins


def disagreements(dependencies: list[str], pins: dict[str, Version]) -> list[str]:
    """What pyproject asks for that the pins do not give: a package (or one an extra brings,
    or one a pinned package needs, as far as this environment's metadata of that very
    version says) unpinned, or pinned outside its specifier."""
    # the image's markers, every value a string (as Marker.evaluate takes them)
    env = {k: str(v) for k, v in default_environment().items()} | IMAGE_PYTHON
    problems: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(Requirement(d), "pyproject.toml") for d in dependencies]
    while todo:
        req, wanted_by = todo.pop()
        if req.marker and not any(
            req.marker.evaluate({**env, "extra": extra}) for extra in ("", *_extras_of(wanted_by))
        ):
            continue
        name = canonicalize_name(req.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{req.name} ({wanted_by} asks for {req}) has no pin")
            continue
        if not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{name}=={pin} does not satisfy {req} ({wanted_by})")
            continue
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        # the package's own requirements, when this environment has that very version
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != pin:
            continue
        extras = ",".join(sorted(req.extras))
        todo += [(Requirement(r), f"{name}[{extras}]=={pin}") for r in dist.requires or ()]
    return problems


def _extras_of(wanted_by: str) -> tuple[str, ...]:
    """The extras asked of the package that needs this requirement ("sqlalchemy[asyncio]")."""
    inside = wanted_by.partition("[")[2].partition("]")[0]
    return tuple(e for e in inside.split(",") if e)


def test_every_dependency_is_pinned_in_the_image_requirements() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    pins = read_pins(LOCK.read_text(encoding="utf-8"))
    problems = disagreements(dependencies, pins)
    assert not problems, f"{LOCK.relative_to(ROOT)} is out of date ({REFRESH}):\n" + "\n".join(
        problems
    )


def test_the_pins_hold_back_what_the_image_holds_back() -> None:
    """IMAGE_CONSTRAINTS (scripts/lock_image_requirements.py): each pinned version meets it,
    and what it kept out of the image (typer 0.29's pydantic) is not pinned."""
    script = load_script("scripts/lock_image_requirements.py")
    pins = read_pins(LOCK.read_text(encoding="utf-8"))
    assert script.IMAGE_CONSTRAINTS
    for line in script.IMAGE_CONSTRAINTS:
        held = Requirement(line)
        pin = pins[canonicalize_name(held.name)]
        assert held.specifier.contains(pin), f"{held.name}=={pin} does not meet {held}; {REFRESH}"
    assert "pydantic" not in pins


def test_the_dockerfile_installs_the_pins_alone() -> None:
    """The dependency layer is built from the pins only (rebuilt when they change, never
    when pyproject.toml's other fields do), with --no-deps: nothing unpinned gets in."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "source=requirements-image.txt" in dockerfile
    assert "pip install --no-deps --no-compile -r /tmp/requirements.txt" in dockerfile
    assert "!requirements-image.txt" in (ROOT / ".dockerignore").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("dependencies", "lock", "expected"),
    [
        # names no environment has installed: their own requirements are not walked
        (["not-installed-a>=1.13"], "not-installed-a==1.20.1\n", []),
        (["Not_Installed.A>=1.13"], "not-installed-a==1.20.1\n", []),
        (
            ["not-installed-a>=1.13"],
            "not-installed-b==1.4.3\n",
            ["not-installed-a (pyproject.toml asks for not-installed-a>=1.13) has no pin"],
        ),
        (
            ["not-installed-a>=2"],
            "not-installed-a==1.20.1\n",
            ["not-installed-a==1.20.1 does not satisfy not-installed-a>=2 (pyproject.toml)"],
        ),
        # a marker for another Python than the image's asks for nothing
        (['tomli>=2; python_version < "3.11"'], "", []),
    ],
)
def test_disagreements_are_found(dependencies: list[str], lock: str, expected: list[str]) -> None:
    assert disagreements(dependencies, read_pins(lock)) == expected


def test_what_an_extra_brings_must_be_pinned_too() -> None:
    """psycopg[binary] brings psycopg-binary: read from psycopg's metadata, when this
    environment has the pinned version."""
    pin = read_pins(LOCK.read_text(encoding="utf-8"))["psycopg"]
    if Version(importlib.metadata.version("psycopg")) != pin:
        pytest.skip(f"this environment's psycopg is not the pinned {pin}")
    problems = disagreements(["psycopg[binary]>=3.1"], {"psycopg": pin})
    assert "psycopg-binary" in [p.split(" ")[0] for p in problems], problems


@pytest.mark.parametrize(
    "line", ["alembic>=1.13", "alembic", 'alembic==1.20.1; python_version > "3"']
)
def test_a_line_that_is_not_an_exact_pin_is_refused(line: str) -> None:
    with pytest.raises(AssertionError, match="not an exact pin"):
        read_pins(line + "\n")
