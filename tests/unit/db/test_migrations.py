"""Migrations: the schema they build is the models', and data migrations keep data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from lbaas.db import migrate, models
from lbaas.db.session import make_engine


def test_0002_gives_existing_haproxy_load_balancers_their_amphora(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    cfg = migrate.alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for lb_id, provider, state in (("lb1", "haproxy", "ACTIVE"), ("lb2", "noop", "ACTIVE"),
                                       ("lb3", "amphora", "PENDING_CREATE")):
            conn.execute(text(
                "insert into load_balancer (id, project_id, created_at, name, admin_state_up, "
                "provisioning_status, operating_status, provider, topology, vip_vnic_type, "
                "additional_vips, failover_requested, vip_address, vip_port_id) values "
                "(:id, 'p', '2026-01-01 00:00:00', 'x', 1, :state, 'ONLINE', :provider, "
                "'SINGLE', 'normal', '[]', 0, '127.1.0.5', 'port-' || :id)"),
                {"id": lb_id, "provider": provider, "state": state})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("select load_balancer_id, role, status, ha_ip, ha_port_id "
                                 "from amphora order by load_balancer_id")).all()
        assert [tuple(r) for r in rows] == [
            ("lb1", "STANDALONE", "ALLOCATED", "127.1.0.5", "port-lb1"),
            ("lb3", "STANDALONE", "PENDING_CREATE", "127.1.0.5", "port-lb3")]
        assert compare_metadata(MigrationContext.configure(conn), models.Base.metadata) == []
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    engine.dispose()


def test_the_migrations_build_the_models_schema(tmp_path: Path, db_url: str) -> None:
    """On both databases (the test above checks SQLite after a data migration)."""
    engine = make_engine(db_url or f"sqlite:///{tmp_path / 'lbaas.sqlite'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    engine.dispose()
    assert diff == []
