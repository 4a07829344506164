"""Facts about the project's Python source, read with `ast` (nothing is imported or run):
where a revision commits, the statement at a line, whether a body raises unconditionally
or does nothing, where env.py runs its migrations."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Protocol


class Parsed(Protocol):
    """A parsed revision file (history.RevisionFile): history.py parses with the helpers
    below, so they name what they read, not the class."""

    @property
    def module(self) -> ast.Module | None: ...


def commit_lines(f: Parsed) -> list[int]:
    """Lines of `<anything>.commit()` and `execute("COMMIT")` in a revision's source."""
    import ast

    if f.module is None:
        return []
    return sorted(
        node.lineno
        for node in ast.walk(f.module)
        if isinstance(node, ast.Call) and _is_commit(node)
    )


def _is_commit(call: object) -> bool:
    import ast

    assert isinstance(call, ast.Call)
    if not isinstance(call.func, ast.Attribute):
        return False
    if call.func.attr == "commit":
        return not call.args
    first = call.args[0] if call.args else None
    return (
        call.func.attr == "execute"
        and isinstance(first, ast.Constant)
        and str(first.value).strip().rstrip(";").upper() == "COMMIT"
    )


def statement_span(rev_file: Parsed, line: int | None, phase: str | None) -> tuple[int, int] | None:
    """The lines of the innermost statement at `line` (a `with batch_alter_table` block
    fails at its `with` line, where the batch runs); the whole function without a line."""
    import ast

    if rev_file.module is None:
        return None
    func = next(
        (
            n
            for n in rev_file.module.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == phase
        ),
        None,
    )
    if func is None:
        return None
    if line is None or line == func.lineno:
        return func.lineno, func.end_lineno or func.lineno
    best: tuple[int, int] | None = None
    for node in ast.walk(func):
        if isinstance(node, ast.stmt) and node is not func:
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and (
                best is None or end - node.lineno < best[1] - best[0]
            ):
                best = (node.lineno, end)
    return best


def run_migrations_line(env_py: object) -> int | None:
    import ast

    try:
        module = ast.parse(Path(str(env_py)).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    calls = [
        n.lineno
        for n in ast.walk(module)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "run_migrations"
    ]
    if calls:
        return min(calls)
    return module.body[-1].lineno if module.body else 1


def raises_unconditionally(body: list[ast.stmt]) -> bool:
    """True when a statement at the top of the body (not under if/try/with) is `raise`,
    with nothing before it that could return: the downgrade is irreversible by design.

    `raise RuntimeError("Cannot undelete data!")` after a docstring, a bare
    `raise ValueError`, `raise NotImplementedError("why")` all count; `if lossy: return`
    before the raise makes it conditional, so it does not (the walk runs it instead)."""
    for stmt in body:
        if isinstance(stmt, ast.Raise):
            return True
        if any(isinstance(n, ast.Return) for n in ast.walk(stmt)):
            return False
    return False


def is_empty_body(body: list[ast.stmt]) -> bool:
    """Only `pass`, `...` and a docstring: a downgrade that silently does nothing."""
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.Pass):
            continue
        value = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(value, ast.Constant) and (
            value.value is Ellipsis or (i == 0 and isinstance(value.value, str))
        ):
            continue
        return False
    return True


def upgrade_strings(f: Parsed) -> dict[str, int]:
    """Each string literal in upgrade() (words of SQL text too), with its first line: the
    names an upgrade creates objects by, as written."""
    if f.module is None:
        return {}
    found: dict[str, int] = {}
    for node in f.module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "upgrade":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    for word in (sub.value, *_sql_words(sub.value)):
                        if word not in found or sub.lineno < found[word]:
                            found[word] = sub.lineno
    return found


def _sql_words(text: str) -> list[str]:
    """Identifiers in a piece of SQL text, unquoted ('CREATE TABLE "Orders"' -> Orders)."""
    return [quoted or bare for quoted, bare in _SQL_WORD.findall(text)]


_SQL_WORD = re.compile(r'"([^"]+)"|\b([A-Za-z_][\w$]*)\b')
