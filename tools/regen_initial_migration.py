"""Regenerate the initial migration from the models (before the first release only).

Usage: .venv/bin/python tools/regen_initial_migration.py
"""

import tempfile
from pathlib import Path

from alembic import command

from lbaas.db.migrate import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'gen.sqlite'}")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
