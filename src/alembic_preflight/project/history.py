"""The revision graph, read statically: revision files are parsed with `ast`, never imported.

Which files count and how ids resolve follow Alembic's own loader
(alembic/script/base.py `_load_revisions`, `Script._from_path`, and
alembic/script/revision.py `RevisionMap._revision_map`), so what this module calls a
head or a missing parent is what `alembic heads` / `alembic upgrade` would say.
"""

from __future__ import annotations

import ast
import heapq
import io
import os
import re
import tokenize
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alembic_preflight import collector
from alembic_preflight.project.source import raises_unconditionally

if TYPE_CHECKING:  # (not imported: the worker reads histories without the settings)
    from alembic_preflight.settings import Settings

# Alembic: _only_source_rev_file and _legacy_rev (alembic/script/base.py)
_REV_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


_LEGACY_REV = re.compile(r"([a-f0-9]+)\.py$")


ID_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")


@dataclass(frozen=True)
class RevisionFile:
    """One revision file as its source says, whether or not Alembic could load it."""

    path: Path
    revision: str | None
    down_revisions: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    branch_labels: tuple[str, ...] = ()
    message: str | None = None  # Alembic's Script.doc: the docstring's first paragraph
    upgrade_line: int | None = None  # line of `def upgrade`
    downgrade_line: int | None = None  # line of `def downgrade`
    syntax_error: tuple[str, int | None] | None = None  # (message, line)
    irreversible: bool = False  # downgrade() raises unconditionally: irreversible by design
    # line of each module-level `revision =`, `down_revision =`, ... assignment
    lines: tuple[tuple[str, int], ...] = ()
    # assignments whose value is not a literal (e.g. `down_revision = OTHER`): name, line
    unreadable: tuple[tuple[str, int], ...] = ()
    docstring_line: int | None = None
    module: ast.Module | None = field(default=None, compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)  # for comments (lint)

    def line_of(self, name: str) -> int | None:
        """Line of the module-level assignment to `name` (revision, down_revision, ...)."""
        return dict(self.lines).get(name)

    @property
    def parents_and_dependencies(self) -> tuple[str, ...]:
        return self.down_revisions + self.depends_on


def is_revision_file_name(name: str) -> bool:
    """Whether Alembic would load a file of this name from a version location."""
    return _REV_FILE.match(name) is not None


def revision_files(version_dirs: Sequence[Path], recursive: bool) -> list[Path]:
    """The files Alembic would load, in its order: sorted per folder, folders sorted."""
    found: list[Path] = []
    seen: set[Path] = set()
    for top in version_dirs:
        if not top.is_dir():  # Alembic skips version locations that do not exist
            continue
        for root, dirs, files in _walk(top):
            if root.name.endswith("__pycache__"):
                continue
            for name in sorted(files):
                path = root / name
                try:
                    real = path.resolve()
                except (OSError, RuntimeError):  # a link loop: reported when read
                    real = path.absolute()
                # Alembic warns and skips a file reached twice via overlapping locations
                if is_revision_file_name(name) and real not in seen:
                    seen.add(real)
                    found.append(real)
            if not recursive:
                break
            dirs.sort()
    return found


def _walk(top: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    for root, dirs, files in os.walk(top):
        yield Path(root), dirs, files


def load_history(version_dirs: Sequence[Path], recursive: bool) -> History:
    with collector.paused():  # syntax trees, none of them garbage
        files = [_read(p) for p in revision_files(version_dirs, recursive)]
    return History.from_files(files)


def _read(path: Path) -> RevisionFile:
    """A revision file, or one that cannot be read (a link loop, no permission): Alembic
    cannot load it either, which the graph check reports at the file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return _salvage(path, "", (f"cannot be read: {e.strerror or e}", None))
    return parse_revision_file(path, data)


def parse_revision_file(path: Path, data: bytes) -> RevisionFile:
    """Parse one revision file's bytes (from disk, or from `git show` at another ref)."""
    source = _decode(data)
    try:
        module = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError) as e:
        line = e.lineno if isinstance(e, SyntaxError) else None
        msg = e.msg if isinstance(e, SyntaxError) else str(e)
        return _salvage(path, source, (msg, line))
    values, lines, unreadable = _assignments(module)
    revision = _first(values.get("revision"))
    if "revision" not in values and "revision" not in dict(unreadable):
        # Alembic's legacy fallback: the id is the file name (Script._from_path)
        m = _LEGACY_REV.match(path.name)
        revision = m.group(1) if m else None
    funcs = {
        node.name: node
        for node in module.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    downgrade = funcs.get("downgrade")
    doc_node = _docstring_node(module.body)
    return RevisionFile(
        path=path,
        revision=revision,
        down_revisions=values.get("down_revision", ()),
        depends_on=values.get("depends_on", ()),
        branch_labels=values.get("branch_labels", ()),
        message=_message(ast.get_docstring(module, clean=False)),
        upgrade_line=funcs["upgrade"].lineno if "upgrade" in funcs else None,
        downgrade_line=downgrade.lineno if downgrade else None,
        irreversible=downgrade is not None and raises_unconditionally(downgrade.body),
        lines=tuple(sorted(lines.items(), key=lambda kv: kv[1])),
        unreadable=tuple(unreadable),
        docstring_line=doc_node.lineno if doc_node else None,
        module=module,
        source=source,
    )


def _decode(data: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")


_SALVAGE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(['\"])([^'\"\n]+)\2", re.M)


def _salvage(path: Path, source: str, error: tuple[str, int | None]) -> RevisionFile:
    """A file that does not parse: still read its ids by pattern, so that its children
    are not also reported as having a missing parent."""
    found: dict[str, tuple[str, int]] = {}
    for m in _SALVAGE.finditer(source):
        found.setdefault(m.group(1), (m.group(3), source.count("\n", 0, m.start()) + 1))
    rev = found.get("revision")
    down = found.get("down_revision")
    return RevisionFile(
        path=path,
        revision=rev[0] if rev else None,
        down_revisions=(down[0],) if down else (),
        syntax_error=error,
        lines=tuple((k, v[1]) for k, v in found.items()),
        source=source,
    )


def _assignments(
    module: ast.Module,
) -> tuple[dict[str, tuple[str, ...]], dict[str, int], list[tuple[str, int]]]:
    """Module-level `name = value` / `name: T = value` for the id names; the last wins,
    as it would when Python runs the module."""
    values: dict[str, tuple[str, ...]] = {}
    lines: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    for node in module.body:
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value: ast.expr | None = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target.id], node.value
        else:
            continue
        for name in targets:
            if name not in ID_NAMES or value is None:
                continue
            lines[name] = node.lineno
            parsed = _literal_ids(value)
            if parsed is None:
                unreadable[name] = node.lineno
                values.pop(name, None)
            else:
                values[name] = parsed
                unreadable.pop(name, None)
    return values, lines, sorted(unreadable.items(), key=lambda kv: kv[1])


def _literal_ids(node: ast.expr) -> tuple[str, ...] | None:
    """None / "id" / ("a", "b") / ["a", "b"] as a tuple (Alembic's util.to_tuple);
    None when the value is not a literal we can trust."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _first(ids: tuple[str, ...] | None) -> str | None:
    return ids[0] if ids else None


def _docstring_node(body: list[ast.stmt]) -> ast.Expr | None:
    if body and isinstance(body[0], ast.Expr):
        value = body[0].value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return body[0]
    return None


def _message(doc: str | None) -> str | None:
    # Alembic's Script.doc: the stripped docstring up to the first blank line
    if doc is None:
        return None
    return re.split("\n\n", doc.strip())[0]


@dataclass(frozen=True)
class SettingsRevisions:
    """The revisions the settings name, as ids (History.named_by)."""

    skip: tuple[str, ...]  # skip-revisions: stamped instead of run
    floor: str | None  # downgrade-floor: never downgraded, nor what it builds on
    data: Mapping[str, str]  # data:'s revision names → ids


@dataclass(frozen=True)
class History:
    """The revision graph: every file, and the graph Alembic would build from them.

    Names in down_revision/depends_on resolve as Alembic resolves them: a revision id,
    else a branch label (RevisionMap puts labels in the same map)."""

    files: tuple[RevisionFile, ...]
    revisions: Mapping[str, RevisionFile]  # id -> the first file declaring it
    heads: tuple[str, ...]
    bases: tuple[str, ...]
    duplicates: Mapping[str, tuple[RevisionFile, ...]]
    missing: tuple[tuple[RevisionFile, str], ...]  # (file, name it refers to that is nowhere)
    cycles: tuple[tuple[str, ...], ...]
    label_clashes: Mapping[str, tuple[RevisionFile, ...]]  # label -> files declaring it
    _parents: Mapping[str, tuple[str, ...]] = field(repr=False, compare=False)
    _dependencies: Mapping[str, tuple[str, ...]] = field(repr=False, compare=False)
    _children: Mapping[str, tuple[str, ...]] = field(repr=False, compare=False)

    @classmethod
    def from_files(cls, files: Iterable[RevisionFile]) -> History:
        files = tuple(files)
        revisions: dict[str, RevisionFile] = {}
        declared: dict[str, list[RevisionFile]] = {}
        for f in files:
            if f.revision is None:
                continue
            declared.setdefault(f.revision, []).append(f)
            revisions.setdefault(f.revision, f)
        labels: dict[str, list[RevisionFile]] = {}
        for f in revisions.values():
            for label in f.branch_labels:
                labels.setdefault(label, []).append(f)

        def resolve(name: str) -> str | None:
            if name in revisions:
                return name
            owners = labels.get(name)
            return owners[0].revision if owners else None

        parents: dict[str, tuple[str, ...]] = {}
        dependencies: dict[str, tuple[str, ...]] = {}
        missing: list[tuple[RevisionFile, str]] = []
        for f in files:
            for name in f.parents_and_dependencies:
                if resolve(name) is None:
                    missing.append((f, name))
        for rev, f in revisions.items():
            parents[rev] = _unique(r for n in f.down_revisions if (r := resolve(n)) is not None)
            dependencies[rev] = _unique(r for n in f.depends_on if (r := resolve(n)) is not None)
        children: dict[str, list[str]] = {rev: [] for rev in revisions}
        for rev in revisions:
            for p in parents[rev]:
                children[p].append(rev)
        order = {rev: i for i, rev in enumerate(revisions)}
        # A revision only named by depends_on stays a head, as in `alembic heads`.
        heads = tuple(rev for rev in revisions if not children[rev])
        bases = tuple(rev for rev, f in revisions.items() if not f.down_revisions)
        edges = {rev: parents[rev] + dependencies[rev] for rev in revisions}
        return cls(
            files=files,
            revisions=revisions,
            heads=heads,
            bases=bases,
            duplicates={k: tuple(v) for k, v in declared.items() if len(v) > 1},
            missing=tuple(missing),
            cycles=_cycles(edges, order),
            label_clashes={k: tuple(v) for k, v in labels.items() if len(v) > 1},
            _parents=parents,
            _dependencies=dependencies,
            _children={k: tuple(v) for k, v in children.items()},
        )

    def parents(self, rev: str) -> tuple[str, ...]:
        """The down revisions of `rev`, as revision ids (branch labels resolved)."""
        return self._parents.get(rev, ())

    def dependencies(self, rev: str) -> tuple[str, ...]:
        """What `rev` depends_on, as revision ids (branch labels resolved)."""
        return self._dependencies.get(rev, ())

    def children(self, rev: str) -> tuple[str, ...]:
        """Revisions whose down_revision is `rev`."""
        return self._children.get(rev, ())

    def resolve(self, name: str) -> str | None:
        """A revision id, a unique prefix of one (as Alembic accepts), or a branch label
        as the revision id it names, else None."""
        if name in self.revisions:
            return name
        for f in self.revisions.values():
            if name in f.branch_labels:
                return f.revision
        starting = [r for r in self.revisions if name and r.startswith(name)]
        return starting[0] if len(starting) == 1 else None

    def named_in_settings(self, name: str, source: str) -> str:
        """resolve() for a revision a setting names; a name no revision has is a
        configuration error (exit 2), said after `source`, where the setting was given
        (Settings.source_of: "FILE:LINE: `key`" or "--key")."""
        from alembic_preflight.errors import ConfigError

        rev = self.resolve(name)
        if rev is None:
            raise ConfigError(f"{source}: no revision `{name}` in this history")
        return rev

    def named_by(self, settings: Settings) -> SettingsRevisions:
        """The revisions the settings name (skip-revisions, downgrade-floor, data:) as
        ids; the first name no revision has is a configuration error (exit 2), said
        where it was given."""
        skip = tuple(
            self.named_in_settings(n, settings.source_of("skip-revisions"))
            for n in settings.skip_revisions
        )
        floor = None
        if settings.downgrade_floor:
            source = settings.source_of("downgrade-floor")
            floor = self.named_in_settings(settings.downgrade_floor, source)
        data = {n: self.named_in_settings(n, settings.source_of("data", n)) for n in settings.data}
        return SettingsRevisions(skip, floor, data)

    def lineage(self, rev: str) -> frozenset[str]:
        """`rev` and every revision it builds on (parents and depends_on, transitively)."""
        seen: set[str] = set()
        stack = [rev]
        while stack:
            r = stack.pop()
            if r not in seen:
                seen.add(r)
                stack.extend(self.parents(r) + self.dependencies(r))
        return frozenset(seen)

    def branch_of(self, rev: str) -> frozenset[str]:
        """Branch labels `rev` carries: its own and every ancestor's (Alembic propagates
        labels to descendants through down_revision, not depends_on)."""
        seen: set[str] = set()
        labels: set[str] = set()
        stack = [rev]
        while stack:
            r = stack.pop()
            if r in seen or r not in self.revisions:
                continue
            seen.add(r)
            labels.update(self.revisions[r].branch_labels)
            stack.extend(self.parents(r))
        return frozenset(labels)

    def topological_order(self) -> tuple[str, ...]:
        """Every revision, bases first; parents and depends_on before dependents.

        Ties break by file order (Alembic's listing order), so the result is stable.
        Revisions on a cycle cannot be ordered: they come last, in file order."""
        index = {rev: i for i, rev in enumerate(self.revisions)}
        waiting = {
            rev: len(set(self.parents(rev) + self.dependencies(rev))) for rev in self.revisions
        }
        dependents: dict[str, set[str]] = {rev: set() for rev in self.revisions}
        for rev in self.revisions:
            for p in self.parents(rev) + self.dependencies(rev):
                dependents[p].add(rev)
        ready = [(index[r], r) for r, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, rev = heapq.heappop(ready)
            out.append(rev)
            for d in dependents[rev]:
                waiting[d] -= 1
                if waiting[d] == 0:
                    heapq.heappush(ready, (index[d], d))
        done = set(out)
        out.extend(r for r in self.revisions if r not in done)
        return tuple(out)

    @property
    def syntax_errors(self) -> tuple[RevisionFile, ...]:
        return tuple(f for f in self.files if f.syntax_error is not None)

    @property
    def irreversible(self) -> tuple[RevisionFile, ...]:
        """Files whose downgrade() raises by design (for summaries: "N are irreversible")."""
        return tuple(f for f in self.files if f.irreversible)

    @property
    def loadable(self) -> bool:
        """Whether Alembic could build its revision map from these files."""
        return not (
            self.syntax_errors
            or self.missing
            or self.duplicates
            or self.cycles
            or self.label_clashes
            or any(_no_revision(f) for f in self.files)
        )


def _no_revision(f: RevisionFile) -> bool:
    # Alembic refuses a file with no `revision` (a non-literal one it can still read)
    return f.revision is None and "revision" not in dict(f.unreadable)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _cycles(
    edges: Mapping[str, tuple[str, ...]], order: Mapping[str, int]
) -> tuple[tuple[str, ...], ...]:
    """Strongly connected components with more than one revision, or a revision that is
    its own parent (Tarjan's algorithm, iterative so long histories do not recurse)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[tuple[str, ...]] = []
    counter = 0
    for start in order:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append(tuple(sorted(component, key=order.__getitem__)))
    return tuple(sorted(found, key=lambda c: order[c[0]]))
