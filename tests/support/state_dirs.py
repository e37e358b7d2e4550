"""Temporary state directories of data-plane tests, and the processes started in them.

HAProxy masters and workers run with a load balancer's directory as working
directory and name it on their command line; keepalived names its
configuration there. So every process a test started in its state
directory can be found again from the directory alone, by PID, without
looking at program names (other people run HAProxy on this host too).

- A fixture makes its directory with :func:`make_state_dir` and removes it
  with :func:`remove_state_dir`, in a ``finally``: whatever the test's own
  teardown (``Amphorae.delete``) left running in it is stopped by PID
  (:func:`stop_processes_in`) before the directory goes, so a teardown that
  failed half-way leaves no master running from a deleted directory.
- An interrupted run runs no teardown (SIGTERM, SIGKILL, a timeout): with
  its first directory, each test process starts a reaper in a session of
  its own (a kill of the test's process group spares it) that waits for
  that process to end, however it ends, then stops what runs in each
  directory the process made (listed in ``<tmp>/lbt-reap-<pid>-<start>.dirs``)
  and deletes them. ``python -m tests.support.state_dirs reap PID START
  LIST`` is that reaper.

Only processes found in this process's own directories are ever stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.support.postgres import _start_time, _wait_for_exit

PREFIX = "lbt-"
REPO = Path(__file__).resolve().parents[2]
_lock = threading.Lock()
_reaped: dict[int, Path] = {}  # this process's PID -> its list of directories


def processes_in(*roots: Path) -> list[int]:
    """PIDs of the live processes (not this one) working in one of ``roots`` or below
    it, or naming a path under it on their command line (one pass over ``/proc``);
    the directories may be deleted already."""
    texts = [str(root).rstrip("/") for root in roots]
    needles = [t.encode() for t in texts]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
        except OSError:
            cwd = ""  # gone, a zombie, or not ours to read
        if any(cwd == t or cwd.startswith(t + "/") for t in texts):
            found.append(int(entry.name))
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(needle in arg for arg in argv for needle in needles):
            found.append(int(entry.name))
    return found


def stop_processes_in(*roots: Path, patience: float = 5.0) -> list[int]:
    """Stop every process of :func:`processes_in` (SIGTERM; SIGKILL to those still
    there after ``patience`` seconds). Returns their PIDs (empty: nothing ran there)."""
    pids = processes_in(*roots)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + patience
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in processes_in(*roots) if pid in pids]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def make_state_dir(prefix: str = PREFIX) -> Path:
    """A new directory under /tmp (short: UNIX socket paths), listed for this process's
    reaper (started with the first one)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    with _lock:
        listing = _reaped.get(os.getpid())
        if listing is None:
            start = _start_time(os.getpid()) or "0"
            listing = Path(tempfile.gettempdir()) / f"{PREFIX}reap-{os.getpid()}-{start}.dirs"
            listing.touch()
            subprocess.Popen([sys.executable, "-m", "tests.support.state_dirs", "reap",
                              str(os.getpid()), start, str(listing)], cwd=REPO,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            _reaped[os.getpid()] = listing
        with listing.open("a") as f:
            f.write(f"{path}\n")
    return path


def remove_state_dir(path: Path) -> list[int]:
    """Stop what still runs in ``path`` (by PID), then delete it. Returns the PIDs stopped
    (a clean teardown stopped them all already: empty)."""
    stopped = stop_processes_in(path)
    shutil.rmtree(path, ignore_errors=True)
    return stopped


def reap(owner: int, start: str, listing: Path) -> None:
    """Wait for process ``owner`` (started at ``start``) to end, then stop what runs in
    the directories named in ``listing`` and delete them, then ``listing``."""
    _wait_for_exit(owner, start)
    with contextlib.suppress(OSError):
        dirs = [Path(line) for line in listing.read_text().splitlines() if line.strip()]
        stop_processes_in(*dirs)
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)
    listing.unlink(missing_ok=True)


if __name__ == "__main__" and sys.argv[1:2] == ["reap"]:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    reap(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
