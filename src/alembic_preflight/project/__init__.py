"""The Alembic project on disk: alembic.ini, the script directory and its revision files.

Nothing here imports the user's code: env.py and revision modules only ever run in the
worker process (worker/). Alembic's own reading of alembic.ini (`read_layout`) imports
Alembic and SQLAlchemy (~0.4 s), so the verifier asks a prewarmed worker, which imports
them anyway, to run it (worker/client.py); the rest of a project (its history) is read here."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic_preflight.errors import ConfigError
from alembic_preflight.project.history import History, load_history

if TYPE_CHECKING:  # imported where it runs: Alembic takes ~0.4 s to import
    from alembic.config import Config

    # (a worker reads alembic.ini through read_layout and never needs the settings, nor
    # PyYAML and the findings that come with them: ~20 ms of its start)
    from alembic_preflight.settings import Settings


@dataclass(frozen=True)
class Project:
    directory: Path  # where `alembic` would be run: the worker's working directory
    ini_path: Path
    section: str
    script_location: Path
    version_locations: tuple[Path, ...]
    recursive: bool
    file_template: str | None  # None: alembic.ini sets none (Alembic's default applies)
    version_table: str
    repo_root: Path
    history: History

    def rel(self, path: object) -> str:
        """A path relative to the repository root, as reports and annotations want it."""
        p = Path(str(path))
        if not p.is_absolute():
            p = self.directory / p
        try:
            p = p.resolve()
        except (OSError, RuntimeError):  # a link loop: the path as it is
            p = Path(os.path.normpath(p))
        try:
            return p.relative_to(self.repo_root).as_posix()
        except ValueError:
            return p.as_posix()


def repository_root(start: Path) -> Path:
    """GITHUB_WORKSPACE / CI_PROJECT_DIR in CI, else git's top level, else the current directory."""
    for var in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        value = os.environ.get(var)
        if value and _contains(Path(value).resolve(), start.resolve()):
            return Path(value).resolve()
    try:
        out = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        if out:
            return Path(out).resolve()
    except (OSError, subprocess.SubprocessError):
        pass
    return Path.cwd().resolve()


def _contains(parent: Path, child: Path) -> bool:
    return child == parent or parent in child.parents


@dataclass(frozen=True)
class Layout:
    """What Alembic makes of alembic.ini: the script directory and version locations (as
    Alembic has them: relative to the project directory, or absolute), and what else of
    it a check needs."""

    script_dir: str
    version_locations: tuple[str, ...]
    recursive: bool
    file_template: str | None  # None: alembic.ini sets none (Alembic's default applies)


def check_ini(settings: Settings) -> None:
    """alembic.ini exists, reads, and names a script_location in the chosen section."""
    ini = settings.ini_path.resolve()
    if not ini.is_file():
        raise ConfigError(f"{ini}: no alembic.ini here (pass --config/-c to name one elsewhere)")
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
    except UnicodeDecodeError as e:
        # Alembic reads it as UTF-8 too and would fail the same way (issue 15)
        at = ini.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{ini}:{at}: alembic.ini is not UTF-8 (byte 0x{e.object[e.start]:02x}): save "
            "it as UTF-8"
        ) from e
    except configparser.Error as e:
        line = getattr(e, "lineno", None)
        where = f"{ini}:{line}" if line else str(ini)
        raise ConfigError(f"{where}: alembic.ini cannot be read: {e.message}") from e
    if not parser.has_section(settings.name):
        raise ConfigError(f"{ini}: no [{settings.name}] section (choose another with --name)")
    if not parser.has_option(settings.name, "script_location"):
        raise ConfigError(f"{ini}: [{settings.name}] has no script_location")


def read_layout(ini_path: Path, section: str, directory: Path) -> Layout:
    """The layout as the alembic CLI would see it, run from `directory` (no env.py is run);
    ConfigError when Alembic refuses it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config(str(ini_path.resolve()), ini_section=section)
    cwd = Path.cwd()
    saved_path = list(sys.path)  # from_config prepends prepend_sys_path: not in our process
    # Alembic resolves a relative script_location against the working directory,
    # the way `alembic` run from the project directory would.
    os.chdir(directory)
    try:
        script = ScriptDirectory.from_config(config)
        # resolved (made absolute) when first read: read here, inside the project
        # directory, or a relative script_location resolves against wherever the verifier
        # was started (`verify backend` from the repository root read no revision: issue 13)
        return Layout(
            script_dir=os.path.abspath(script.dir),
            version_locations=tuple(os.path.abspath(loc) for loc in script._version_locations),
            recursive=script.recursive_version_locations,
            file_template=_explicit_file_template(config, script.file_template),
        )
    except CommandError as e:
        raise ConfigError(f"{ini_path}: {e}") from e
    except configparser.Error as e:  # a bad %(name)s, as Alembic's own reading would fail
        message = getattr(e, "message", str(e)).strip().splitlines()[0]
        raise ConfigError(f"{ini_path}: alembic.ini cannot be read: {message}") from e
    finally:
        os.chdir(cwd)
        sys.path[:] = saved_path


def _explicit_file_template(config: Config, template: str) -> str | None:
    """The template when alembic.ini sets one: a default nobody chose is no convention
    to hold older files to (the lint rule file-name-template)."""
    # the ini section only: pyproject's [tool.alembic] is not read here (no toml_file)
    return template if config.get_main_option("file_template") is not None else None


def load_project(
    settings: Settings, read: Callable[[Settings], Layout | None] | None = None
) -> Project:
    """The project `settings` name; its layout as `read` gets it (from a worker), or
    read here when it cannot."""
    directory = settings.project_dir.resolve()
    check_ini(settings)
    layout = read(settings) if read is not None else None
    if layout is None:
        layout = read_layout(settings.ini_path, settings.name, directory)
    script_dir = (directory / layout.script_dir).resolve()
    if not script_dir.is_dir():
        raise ConfigError(
            f"{settings.ini_path}: script_location {layout.script_dir} is not a directory"
        )
    if not (script_dir / "env.py").is_file():
        raise ConfigError(f"{script_dir}: no env.py in the script directory")
    locations = tuple((directory / loc).resolve() for loc in layout.version_locations)
    history = load_history(locations, recursive=layout.recursive)
    return Project(
        directory=directory,
        ini_path=settings.ini_path.resolve(),
        section=settings.name,
        script_location=script_dir,
        version_locations=locations,
        recursive=layout.recursive,
        file_template=layout.file_template,
        version_table="alembic_version",  # env.py may change it; the worker reports the real one
        repo_root=repository_root(directory),
        history=history,
    )
