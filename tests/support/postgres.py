"""A throwaway PostgreSQL cluster for the tests (initdb + pg_ctl in a temp dir).

PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` user that Debian's package creates. ``available()`` says whether
the binaries (and that user, when needed) are here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _bin(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def available() -> bool:
    """True if a throwaway cluster can be started here."""
    if not (_bin("initdb") and _bin("pg_ctl")):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running cluster on 127.0.0.1 with database ``lbaas`` (trust auth)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lbaas-pg-"))
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run([*_run_as(), _bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                        "lbaas", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*_run_as(), _bin("pg_ctl"), "-D", str(data), "-w", "-l",
                        str(self.dir / "log"), "-o",
                        f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off",
                        "start"], check=True, capture_output=True)
        subprocess.run([*_run_as(), _bin("createdb") or "createdb", "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "lbaas", "lbaas"], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://lbaas@127.0.0.1:{self.port}/lbaas"

    def stop(self) -> None:
        subprocess.run([*_run_as(), _bin("pg_ctl"), "-D", str(self.dir / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
