from alembic_preflight.cli import run

run()
