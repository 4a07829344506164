"""The version table's row moved from one revision to the next with one statement per run.

Alembic moves it (HeadMaintainer._update_version) with a new UPDATE whose values are
literals, so SQLAlchemy compiles a new statement for every step: ~0.7 ms of Python a step,
three steps a walked revision, against ~0.1 ms the server spends on it (measured at 200
revisions; issue 21 named it). Here the same UPDATE takes the two versions as bound
parameters: compiled once per version table, then found in SQLAlchemy's cache.

Same row, same statement otherwise, the same check of the row count and the same error
when it is not one. Offline (--sql) runs, which print literals, keep Alembic's own, and so
does an Alembic whose HeadMaintainer is not the one this was written against. In the
fast walk (sql_conn.deferrable_from_versions) the UPDATE also returns whether any
constraint is deferrable, which the walk asks after every step.
"""

from __future__ import annotations

from typing import Any

_TO, _FROM = "alembic_preflight_to", "alembic_preflight_from"

# Whether any constraint is deferrable (sql_conn.SqlConn.check_deferred asks after every
# step of the fast walk). Where the connection's info holds ASKED, the UPDATE returns
# this too and leaves it under ANSWER: the step's last statement, read in the same round
# trip, where asking after it cost one more (three a walked revision).
DEFERRABLE_EXISTS = "EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE condeferrable)"
ASKED, ANSWER = "alembic_preflight.deferrable_asked", "alembic_preflight.deferrable"


def install() -> None:
    """Once per process: Alembic's HeadMaintainer moves the row with a bound statement."""
    from alembic.runtime import migration
    from alembic.util import CommandError
    from sqlalchemy import bindparam, literal_column

    maintainer: Any = getattr(migration, "HeadMaintainer", None)
    original = getattr(maintainer, "_update_version", None)
    if original is None or getattr(original, "_preflight", False):
        return

    def update_version(self: Any, from_: str, to_: str) -> None:
        context = self.context
        if context.as_sql or not hasattr(context, "_version"):
            original(self, from_, to_)
            return
        assert to_ not in self.heads
        self.heads.remove(from_)
        self.heads.add(to_)
        table = context._version
        info = context.connection.info
        asked = bool(info.get(ASKED))
        cached = getattr(context, "_preflight_update", None)
        if cached is None or cached[0] is not table or cached[1] != asked:
            update = (
                table.update()
                .values(version_num=bindparam(_TO))
                .where(table.c.version_num == bindparam(_FROM))
            )
            if asked:
                update = update.returning(literal_column(DEFERRABLE_EXISTS))
            cached = context._preflight_update = (table, asked, update)
        ret = context.impl._exec(cached[2], params={_TO: to_, _FROM: from_})
        rows = ret.fetchall() if asked and ret is not None else None
        count = len(rows) if rows is not None else ret.rowcount if ret is not None else 1
        if context.dialect.supports_sane_rowcount and count != 1:
            raise CommandError(
                "Online migration expected to match one "
                f"row when updating '{from_}' to '{to_}' in '{context.version_table}'; "
                f"{count} found"
            )
        if rows is not None and len(rows) == 1:
            info[ANSWER] = bool(rows[0][0])

    update_version._preflight = True  # type: ignore[attr-defined]
    maintainer._update_version = update_version
