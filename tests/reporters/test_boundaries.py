"""Reporters read the neutral record only: no checks, no database, no SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import alembic_preflight.reporters as pkg

ALLOWED_OWN = (
    "alembic_preflight.findings",
    "alembic_preflight.errors",
    "alembic_preflight.output",
    "alembic_preflight.reporters",
)
FORBIDDEN = ("sqlalchemy", "alembic", "psycopg", "asyncpg")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_reporters_import_only_the_record():
    files = sorted(Path(pkg.__file__).parent.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in imports(path):
            if name.startswith("alembic_preflight"):
                assert name.startswith(ALLOWED_OWN), f"{path.name} imports {name}"
            else:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
