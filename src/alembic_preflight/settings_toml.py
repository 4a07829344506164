"""pyproject.toml's [tool.alembic-preflight]: where its keys and entries are.

tomllib reads the values but keeps no positions, and a settings error names the line
that gave the value: a key (`fail-on = ...`), or an entry of a table setting (a rule
under [tool.alembic-preflight.rules], a revision under `data`). So the lines are read
for the key paths each defines: a table header (`[tool.alembic-preflight.rules]`, an
array of tables too), or a key, bare, quoted or dotted (`rules."multiple-heads" = ...`),
joined to the table it is in. What a value spans over later lines (an array, an inline
table, a multi-line string) defines nothing. None where the line cannot be told."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

TABLE = ("tool", "alembic-preflight")

# one part of a key: "basic" (escapes kept as written), 'literal' or bare
_PART = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")
_HEADER = re.compile(r"\s*\[\[?(?P<key>[^\[\]]*)\]\]?\s*(?:#.*)?$")

KeyPath = tuple[str, ...]


def key_line(path: Path, spellings: Collection[str]) -> int | None:
    """The line (from 1) that first defines setting `key`, spelled any of `spellings`:
    its own line, its table's header, or a dotted key in it; None when none does."""
    return _first(path, lambda p: len(p) > 2 and p[2] in spellings)


# an entry's name as written, or a test of it (a `data` revision named by a prefix)
Name = str | Callable[[str], bool]


def path_line(path: Path, spellings: Collection[str], names: tuple[Name, ...]) -> int | None:
    """The line that first defines `names` below setting `key` (spelled any of
    `spellings`): `rules`' `multiple-heads`, `lint`'s `severity`'s `destructive-upgrade`;
    else the nearest of them found above it (`severity` given as an inline table), else
    key_line's."""

    def below(head: tuple[Name, ...]) -> Callable[[KeyPath], bool]:
        return lambda p: (
            len(p) >= 3 + len(head)
            and p[2] in spellings
            and all(_is(name, part) for name, part in zip(head, p[3:], strict=False))
        )

    for n in range(len(names), 0, -1):
        found = _first(path, below(names[:n]))
        if found is not None:
            return found
    return key_line(path, spellings)


def _is(name: Name, part: str) -> bool:
    return name(part) if callable(name) else name == part


def _first(path: Path, wanted: Callable[[KeyPath], bool]) -> int | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return next((n for p, n in _defined(text) if p[:2] == TABLE and wanted(p)), None)


def _defined(text: str) -> Iterator[tuple[KeyPath, int]]:
    """Each key path the document defines, with its line (from 1)."""
    table: KeyPath = ()
    depth, quote = 0, ""  # what a value left open: brackets, a multi-line string
    for n, line in enumerate(text.splitlines(), 1):
        if depth or quote:
            depth, quote = _value_end(line, depth, quote)
            continue
        header = _HEADER.match(line)
        if header is not None:
            key = _key(header["key"])
            if key is not None:
                table = key
                yield key, n
            continue
        found = _leading_key(line)
        if found is not None:
            key, value = found
            yield table + key, n
            depth, quote = _value_end(value, 0, "")


def _key(text: str) -> KeyPath | None:
    """The parts of a whole (dotted) key, or None when `text` is not one."""
    found = _leading_key(text + "=")
    return found[0] if found is not None and not found[1] else None


def _leading_key(line: str) -> tuple[KeyPath, str] | None:
    """The key a `key = value` line starts with, and the text after its `=`."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _PART.match(line, pos)
        if m is None:
            return None
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if line.startswith("=", pos):
            return tuple(parts), line[pos + 1 :]
        if not line.startswith(".", pos):
            return None
        pos += 1


def _value_end(text: str, depth: int, quote: str) -> tuple[int, str]:
    """The brackets still open and the multi-line string (its delimiter) still open after
    `text`, a value's next piece, given those open before it."""
    i = 0
    while i < len(text):
        if quote:
            end = text.find(quote, i)
            if end < 0:
                return depth, quote
            i, quote = end + 3, ""
            continue
        c = text[i]
        if text.startswith(('"""', "'''"), i):
            quote, i = text[i : i + 3], i + 3
        elif c in "\"'":  # a one-line string: to its closing quote
            i += 1
            while i < len(text) and text[i] != c:
                i += 2 if c == '"' and text[i] == "\\" else 1
            i += 1
        elif c == "#":
            break
        else:
            depth += (c in "[{") - (c in "]}")
            i += 1
    return max(depth, 0), quote
