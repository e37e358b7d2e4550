"""One throwaway PostgreSQL cluster per test run, shared by the xdist workers.

The first process of a run that asks for it (the pytest process, or with
xdist the first worker) starts the cluster (initdb + pg_ctl, on 127.0.0.1
and a socket in its directory) under a file lock, in
``<tmp>/lbaas-pg-<run pid>-<run start time>/``; the other workers of the run
find it there. Each process gets a database of its own in it
(``lbaas_<worker id>``, e.g. ``lbaas_gw0``; ``lbaas_main`` without xdist).

The cluster lives exactly as long as the run: before initdb, a reaper
process starts in a session of its own (a kill of the test's process group
spares it) and waits for the run's process (the pytest process, which is
the xdist workers' parent) to end, however it ends, SIGKILL included. Then
it stops every process of the cluster (SIGQUIT to the postmaster: an
immediate shutdown; SIGKILL to an initdb or pg_ctl still running) and
deletes the directory. ``python tests/support/postgres.py reap PID START DIR``
is that reaper; it uses only the standard library.

PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` user that Debian's package creates. :func:`available` says
whether the binaries (and that user, when needed) are here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot): with its PID, names one process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def run_process() -> int:
    """The PID of the test run: the xdist controller (a worker's parent), or this process."""
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


@dataclass(frozen=True)
class Cluster:
    """A running cluster: superuser ``lbaas`` (trust auth) on 127.0.0.1:``port``."""

    dir: Path
    port: int

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``."""
        return f"postgresql+psycopg://lbaas@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database ``name`` (an old one of that name is dropped); its URL."""
        import psycopg

        with psycopg.connect(f"postgresql://lbaas@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@dataclass(frozen=True)
class Database:
    """This process's database in the run's cluster."""

    cluster: Cluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)


def shared_cluster() -> Cluster:
    """The run's cluster, started (with its reaper) by the first process that asks."""
    run = run_process()
    start = _start_time(run)
    base = Path(tempfile.gettempdir()) / f"lbaas-pg-{run}-{start}"
    lock = base.with_suffix(".lock")
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        info = base / "cluster.json"
        if info.exists():
            return Cluster(base, json.loads(info.read_text())["port"])
        shutil.rmtree(base, ignore_errors=True)  # a start that failed half-way
        base.mkdir()
        _start_reaper(run, str(start), base)
        cluster = _start(base)
        info.write_text(json.dumps({"port": cluster.port}))
        return cluster


def worker_database() -> Database:
    """A fresh database for this process (``lbaas_<xdist worker id>``) in the run's cluster."""
    cluster = shared_cluster()
    name = f"lbaas_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    cluster.create_database(name)
    return Database(cluster, name)


def _start_reaper(run: int, start: str, base: Path) -> None:
    subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "reap", str(run), start,
                      str(base)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def _start(base: Path) -> Cluster:
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    subprocess.run([*_run_as(), _bin("initdb") or "initdb", "-D", str(data), "-A", "trust", "-U",
                    "lbaas", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*_run_as(), _bin("pg_ctl") or "pg_ctl", "-D", str(data), "-w", "-l",
                    str(base / "log"), "-o",
                    f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off",
                    "start"], check=True, capture_output=True)
    return Cluster(base, port)


# -- the reaper ------------------------------------------------------------------------

def _wait_for_exit(pid: int, start: str) -> None:
    """Return once process ``pid`` (started at ``start``) has ended."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already, or no pidfd: poll
        fd = -1
    if fd >= 0:
        try:
            if _start_time(pid) == start:  # the PID was not recycled before pidfd_open
                select.select([fd], [], [])  # readable once the process has ended
            return
        finally:
            os.close(fd)
    while _start_time(pid) == start:
        time.sleep(0.5)


def _processes_of(base: Path) -> list[tuple[int, str]]:
    """(PID, program) of every process whose command line names ``base``."""
    found = []
    needle = str(base).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(needle in arg for arg in argv):
            found.append((int(entry.name), os.path.basename(argv[0].decode(errors="replace"))))
    return found


def reap(run: int, start: str, base: Path, patience: float = 30.0) -> None:
    """Wait for the run to end, then stop the cluster in ``base`` and delete ``base``."""
    _wait_for_exit(run, start)
    deadline = time.monotonic() + patience
    quit_sent: set[int] = set()
    while time.monotonic() < deadline:
        procs = _processes_of(base)
        if not procs:
            break
        for pid, program in procs:
            with contextlib.suppress(ProcessLookupError):
                if program == "postgres" and pid not in quit_sent:
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                    quit_sent.add(pid)
                elif program != "postgres" or time.monotonic() > deadline - patience / 2:
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    shutil.rmtree(base, ignore_errors=True)
    base.with_suffix(".lock").unlink(missing_ok=True)


if __name__ == "__main__" and sys.argv[1:2] == ["reap"]:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    reap(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
