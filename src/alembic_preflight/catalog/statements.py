"""Catalog queries run many times, as statements planned once per session.

Why (issue 7): the schema snapshot's catalog queries are planned on every run, and
planning them costs as much as running them (the listing: ~3 ms to plan, ~3 ms to run, at
200 revisions). The fast walk reads on the migration's own connection, through whatever
driver env.py uses, so it cannot ask the driver to prepare: it sends SQL's own `PREPARE`
and `EXECUTE`, which every PostgreSQL driver passes through.

A `Statement` is text with `$1`, `$2`, ... each bound to an SQL literal. `inline` gives
the plain statement (for sessions where preparing is not worth it); a `Session` prepares
each statement the first time it runs and executes it by name after. Prepared statements
outlive transactions but not `DEALLOCATE ALL` (which a driver, or a migration, may send):
after anything but our own statements ran in the session, say so with
`Session.others_ran()`, and the next statement first asks the server which of ours it
still holds; given the statement that ran, only one that can drop prepared statements
(DEALLOCATE, DISCARD) does that (asking after every migration step cost a statement per
snapshot, two a revision in the stepwise walk).

A `Session` hands a statement its arguments as settings of our own
(`alembic_preflight.p1`, ...; `set_config` just before `EXECUTE`), not as parameters of
the prepared statement: PostgreSQL plans a statement with parameters anew for each of its
first five runs in a session, and planning the snapshot's catalog queries costs three
times running them (measured: ~15 ms against ~4 ms, in every env.py run). A statement
without parameters is planned once. The settings are placeholders nothing else reads;
they last as long as the session (a transaction-local one would vanish at once on a
connection in autocommit mode).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

Query = Callable[[str], "list[tuple[Any, ...]]"]

# Our statements' names start with this (no migration's own statement should).
PREFIX = "alembic_preflight_"
# The settings a Session passes arguments in: SETTING + "1", SETTING + "2", ...
SETTING = "alembic_preflight.p"

_PARAM = re.compile(r"\$(\d+)")
# what can drop a session's prepared statements, also inside a DO block or a function body
# given as text (DISCARD ALL cannot run inside a transaction, where our statements run)
_DROPS_PREPARED = re.compile(r"\b(?:DEALLOCATE|DISCARD)\b", re.I)


@dataclass(frozen=True)
class Statement:
    text: str
    types: tuple[str, ...] = ()  # the SQL type of $1, $2, ...

    @cached_property  # hashed once, not on every EXECUTE
    def name(self) -> str:
        digest = hashlib.sha1(self.from_settings.encode()).hexdigest()[:16]
        return PREFIX + digest

    def inline(self, *args: str) -> str:
        """The statement with each $n replaced by its literal (cast to its type)."""
        assert len(args) == len(self.types)

        def bound(m: re.Match[str]) -> str:
            i = int(m[1]) - 1
            return f"({args[i]})::{self.types[i]}"

        return _PARAM.sub(bound, self.text)

    @cached_property
    def from_settings(self) -> str:
        """The statement with each $n read from the setting a Session puts it in."""

        def setting(m: re.Match[str]) -> str:
            return f"current_setting('{SETTING}{m[1]}')::{self.types[int(m[1]) - 1]}"

        return _PARAM.sub(setting, self.text)


@dataclass
class Session:
    """Runs statements prepared in the session `query` talks to (`query` runs one
    statement and returns its rows, none for PREPARE)."""

    query: Query
    held: set[str] = field(default_factory=set)
    checked: bool = False  # whether `held` is known to be right

    def others_ran(self, sql: str | None = None) -> None:
        """A statement not ours ran in the session: `sql`, or any (None)."""
        if sql is None or _DROPS_PREPARED.search(sql):
            self.checked = False

    def run(self, statement: Statement, *args: str) -> list[tuple[Any, ...]]:
        assert len(args) == len(statement.types)
        if not self.checked:
            rows = self.query(
                f"SELECT name FROM pg_prepared_statements WHERE starts_with(name, '{PREFIX}')"
            )
            self.held, self.checked = {r[0] for r in rows}, True
        name = statement.name
        if name not in self.held:
            self.query(f"PREPARE {name} AS {statement.from_settings}")
            self.held.add(name)
        if args:
            settings = (
                f"set_config('{SETTING}{i}', ({arg})::text, false)" for i, arg in enumerate(args, 1)
            )
            self.query(f"SELECT {', '.join(settings)}")
        return self.query(f"EXECUTE {name}")


def run(query: Query | Session, statement: Statement, *args: str) -> list[tuple[Any, ...]]:
    """Run `statement` prepared when `query` is a Session, else inline."""
    if isinstance(query, Session):
        return query.run(statement, *args)
    return query(statement.inline(*args))
