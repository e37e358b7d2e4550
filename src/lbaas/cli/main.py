"""The ``lbaas`` command: ``lbaas serve`` runs the service."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

app = typer.Typer(help="lbaas: load balancing as a service (the Octavia v2 API over HAProxy).",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _root() -> None:
    """lbaas: load balancing as a service (the Octavia v2 API over HAProxy)."""


@app.command()
def serve(
    config_file: Annotated[list[Path] | None, typer.Option(
        "--config-file", help="oslo.config INI file (repeatable).")] = None,
    host: Annotated[str | None, typer.Option(help="API address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default 9876).")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Database and HAProxy files (default /var/lib/lbaas as root).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL (default: SQLite in the state directory).")] = None,
    provider: Annotated[str | None, typer.Option(
        help="Default provider: haproxy or noop.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the API, the provisioning worker and the health manager in one process."""
    from lbaas.config import load_settings
    from lbaas.service import Service

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings([str(p) for p in config_file or []], host=host, port=port,
                             state_dir=state_dir, database_url=database_url,
                             default_provider=provider)
    service = Service(settings)
    service.start()
    server = _Server(uvicorn.Config(service.app, host=settings.host, port=settings.port,
                                    log_level=log_level, lifespan="off"))
    try:
        server.run()
    finally:
        service.stop()


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM/SIGINT after shutdown.

    uvicorn re-raises the signal that stopped it, which would kill the process
    before the worker finishes its changes in flight; lbaas stops the worker
    first and then exits 0. HAProxy processes are never touched.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def main() -> None:
    """Entry point for ``python -m lbaas``."""
    app()
