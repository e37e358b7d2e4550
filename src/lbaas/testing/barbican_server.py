"""Run a throwaway Barbican: its paste pipeline with keystonemiddleware, on loopback.

This file runs under the Python of Barbican's own virtualenv
(``.venv-barbican``, made by ``scripts/setup --test``), never lbaas's: it
imports nothing from lbaas. :mod:`lbaas.testing.barbican` starts it as

    .venv-barbican/bin/python barbican_server.py DIR PORT [--owner PID]

with ``HOME=DIR``: every Barbican module parses its own configuration from
the default places, the first of which is ``~/.barbican/barbican.conf``
(SQLite in DIR, the simple_crypto backend, ``[keystone_authtoken]``), which
:mod:`lbaas.testing.barbican` writes. The application is the one of
Barbican's ``barbican-api-paste.ini`` (``/`` versions, ``/v1`` behind
``authtoken`` and ``context``), served by waitress on 127.0.0.1:PORT until
SIGTERM or until process OWNER is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

# This file's directory holds lbaas's barbican.py, which would shadow the barbican package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


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


def _paste_ini() -> Path:
    """Barbican's own paste configuration, as installed with the package."""
    return Path(sys.prefix) / "etc" / "barbican" / "barbican-api-paste.ini"


def serve(port: int, threads: int) -> None:
    """Serve Barbican's API (blocks)."""
    from paste import deploy
    from waitress import serve as waitress_serve

    application = deploy.loadapp(f"config:{_paste_ini()}")
    waitress_serve(application, host="127.0.0.1", port=port, threads=threads,
                   ident="barbican", _quiet=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--owner", type=int, default=None,
                        help="exit when this process is gone")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    if Path(os.path.expanduser("~")).resolve() != args.directory.resolve():
        raise SystemExit("run with HOME=DIR: Barbican reads ~/.barbican/barbican.conf")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.owner:
        threading.Thread(target=_watch, args=(args.owner,), daemon=True).start()
    sys.argv[1:] = []  # Barbican's modules parse the command line as their own
    serve(args.port, args.threads)


if __name__ == "__main__":
    main()
