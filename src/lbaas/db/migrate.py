"""Alembic migrations, run automatically when ``lbaas serve`` starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# "lbmigr" in ASCII: the advisory lock PostgreSQL migrations are serialised on.
MIGRATION_LOCK_KEY = 0x6C626D696772


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database at ``engine`` to the newest schema (idempotent).

    On PostgreSQL, control-plane processes starting at once take turns
    (a transaction-level advisory lock, :data:`MIGRATION_LOCK_KEY`): the
    first migrates, the others then find the schema current.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
