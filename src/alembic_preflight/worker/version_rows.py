"""The version table's row moved from one revision to the next with one statement per run.

Alembic moves it (HeadMaintainer._update_version) with a new UPDATE whose values are
literals, so SQLAlchemy compiles a new statement for every step: ~0.7 ms of Python a step,
three steps a walked revision, against ~0.1 ms the server spends on it (measured at 200
revisions; issue 21 named it). Here the same UPDATE takes the two versions as bound
parameters: compiled once per version table, then found in SQLAlchemy's cache.

Same row, same statement otherwise, the same check of the row count and the same error
when it is not one. Offline (--sql) runs, which print literals, keep Alembic's own, and so
does an Alembic whose HeadMaintainer is not the one this was written against.
"""

from __future__ import annotations

from typing import Any

_TO, _FROM = "alembic_preflight_to", "alembic_preflight_from"


def install() -> None:
    """Once per process: Alembic's HeadMaintainer moves the row with a bound statement."""
    from alembic.runtime import migration
    from alembic.util import CommandError
    from sqlalchemy import bindparam

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
        cached = getattr(context, "_preflight_update", None)
        if cached is None or cached[0] is not table:
            update = (
                table.update()
                .values(version_num=bindparam(_TO))
                .where(table.c.version_num == bindparam(_FROM))
            )
            cached = context._preflight_update = (table, update)
        ret = context.impl._exec(cached[1], params={_TO: to_, _FROM: from_})
        if context.dialect.supports_sane_rowcount and ret is not None and ret.rowcount != 1:
            raise CommandError(
                "Online migration expected to match one "
                f"row when updating '{from_}' to '{to_}' in '{context.version_table}'; "
                f"{ret.rowcount} found"
            )

    update_version._preflight = True  # type: ignore[attr-defined]
    maintainer._update_version = update_version
