"""Run a throwaway Keystone: set it up once, then serve its WSGI app on loopback.

This file runs under the Python of Keystone's own virtualenv
(``.venv-keystone``, made by ``scripts/setup --test``), never lbaas's: it
imports nothing from lbaas. :mod:`lbaas.testing.keystone` starts it as

    .venv-keystone/bin/python keystone_server.py DIR PORT [--owner PID]

``DIR/keystone.conf`` must exist. On first start it runs what an operator
runs with ``keystone-manage`` (``db_sync``, ``fernet_setup``,
``credential_setup``, ``bootstrap`` with ``DIR/admin-password``) in this one
process, which saves the four interpreter start-ups; then it serves the
public application with waitress on 127.0.0.1:PORT until SIGTERM, or until
process OWNER is gone (so a test run that dies does not leave it behind).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# This file's directory holds lbaas's keystone.py, which would shadow the keystone package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _reset(cli: Any) -> None:
    """Forget the previous command line: keystone-manage parses it once per process."""
    cli.CONF.reset()
    with contextlib.suppress(Exception):  # not registered before the first command
        cli.CONF.unregister_opt(cli.command_opt)


def _manage(conf: Path, *command: str) -> None:
    """One ``keystone-manage --config-file conf <command>`` in this process."""
    from keystone.cmd import cli

    _reset(cli)
    try:
        cli.main(argv=["keystone-manage", "--config-file", str(conf), *command])
    except SystemExit as e:
        if e.code not in (0, None):
            raise


def set_up(directory: Path, port: int) -> None:
    """Create the database, the fernet and credential keys, and the admin."""
    conf = directory / "keystone.conf"
    user = os.environ.get("USER") or "root"
    password = (directory / "admin-password").read_text().strip()
    _manage(conf, "db_sync")
    owner = ["--keystone-user", user, "--keystone-group", user]
    if os.geteuid() == 0:
        owner = ["--keystone-user", "root", "--keystone-group", "root"]
    _manage(conf, "fernet_setup", *owner)
    _manage(conf, "credential_setup", *owner)
    _manage(conf, "bootstrap", f"--bootstrap-password={password}",
            "--bootstrap-public-url", f"http://127.0.0.1:{port}/v3",
            "--bootstrap-region-id", "RegionOne")
    (directory / "set-up").write_text("done\n")


def _watch(owner: int) -> None:
    """Exit when process ``owner`` is gone (checked twice a second)."""
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)


def _one_writer(app: Any) -> Any:
    """``app`` with its requests that write (any but GET and HEAD) one at a time.

    Keystone on SQLite: two writes at once (tempest creating users from
    several workers; a token issued updates the user's ``last_active_at``)
    fail with "database is locked" when a transaction that read must then
    write, which SQLite's busy timeout does not wait out. Reads stay parallel.
    """
    lock = threading.Lock()

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    return wsgi_app


def serve(directory: Path, port: int, threads: int) -> None:
    """Serve Keystone's public WSGI application (blocks)."""
    from keystone.cmd import cli

    _reset(cli)
    from keystone.common import provider_api

    provider_api.ProviderAPIs._clear_registry_instances()  # the set-up's, if it ran here
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = str(directory / "keystone.conf")
    sys.argv[1:] = []  # Keystone's application parses the command line as its own
    from keystone.server import wsgi
    from waitress import serve as waitress_serve

    application = _one_writer(wsgi.initialize_public_application())
    waitress_serve(application, host="127.0.0.1", port=port, threads=threads,
                   ident="keystone", _quiet=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--owner", type=int, default=None,
                        help="exit when this process is gone")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.owner:
        threading.Thread(target=_watch, args=(args.owner,), daemon=True).start()
    if not (args.directory / "set-up").exists():
        set_up(args.directory, args.port)
    sys.stdout.flush()
    serve(args.directory, args.port, args.threads)


if __name__ == "__main__":
    main()
