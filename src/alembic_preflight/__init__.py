"""alembic-preflight: verify Alembic migrations against a real, throwaway PostgreSQL."""

__version__ = "0.1.0"
