""".alembic-preflight.yml: read within its limits, and where its keys and entries are.

Its own module, imported only where a project has such a file (settings.py): importing
PyYAML costs ~20 ms of the verifier's start (measured), which a project configured in
pyproject.toml, or not at all, never needs."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml

from alembic_preflight.errors import ConfigError

# What a settings file may expand to: YAML aliases can make a few lines stand for
# billions of values (an "alias bomb"), which parsing `data:` would then walk.
MAX_VALUES = 100_000


def load(path: Path) -> Any:
    """The file's document; ConfigError, naming the file (and the line, where YAML
    says), when it is not UTF-8, not YAML, nested too deeply or expands too far."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _values(node, MAX_VALUES) > MAX_VALUES:
            raise ConfigError(
                f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases); "
                "write the values out, or use fewer aliases"
            )
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a settings file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from e


def _values(node: yaml.Node, budget: int) -> int:
    """How many values `node` stands for with every alias expanded, counting up to just
    past `budget` (aliases are the same node objects, reached again)."""
    count, stack = 0, [node]
    while stack and count <= budget:
        n = stack.pop()
        count += 1
        if isinstance(n, yaml.MappingNode):
            stack.extend(v for pair in n.value for v in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return count


def key_line(path: Path, spellings: Collection[str]) -> int | None:
    """The line (from 1) of the top-level key spelled any of `spellings`; None when
    there is none."""
    return next((n for name, n, _ in _keys(path) if name in spellings), None)


# an entry's name as written, or a test of it (a `data` revision named by a prefix)
Name = str | Callable[[str], bool]


def path_line(path: Path, key: str, names: tuple[Name, ...]) -> int | None:
    """The line of `names` below top-level mapping `key` (`rules:`' `multiple-heads`,
    `lint:`'s `severity:`'s `destructive-upgrade`), else of the nearest of them found
    above it, else of `key`; None without `key`."""
    for name, line, value in _keys(path):
        if name != key:
            continue
        for part in names:
            if not isinstance(value, yaml.MappingNode):
                break
            found = next((kv for kv in value.value if _is(part, str(kv[0].value))), None)
            if found is None:
                break
            line, value = int(found[0].start_mark.line) + 1, found[1]
        return line
    return None


def _is(name: Name, written: str) -> bool:
    return name(written) if callable(name) else name == written


def _keys(path: Path) -> list[tuple[str, int, yaml.Node]]:
    """The top-level keys: name, line (from 1) and value node; none when the file cannot
    be read or is not a mapping."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    return [(str(k.value), int(k.start_mark.line) + 1, v) for k, v in root.value]
