"""The database layer: models, engine and sessions, migrations.

It imports nothing from the layers above it (checked by import-linter).
"""
