"""HAProxy process control for one load balancer: check, start, reload, stop, adopt.

Each load balancer has a directory ``<base_path>/<lb_id>/`` (see
:class:`LbFiles`) that is also its HAProxy's working directory, so the
configuration names its sockets relatively (UNIX socket paths are limited to
107 bytes, and HAProxy needs about ten of them for its temporary name).
HAProxy runs in master-worker mode (:func:`command_line`)::

    /usr/sbin/haproxy -W -S unix@master.sock,mode,600
        -p <base_path>/<lb_id>/haproxy.pid -f <base_path>/<lb_id>/haproxy.cfg

so that ``ps`` tells which load balancer each master and worker serves (the
absolute paths hold its id, as neutron-lbaas's and Octavia's amphora agent's
command lines do), started in its own session with stdin closed and
stdout/stderr appended to ``haproxy.log``; it is detached from lbaas (these
hosts have no systemd) and outlives it. The master stays in the foreground
of that session rather than using ``-D``, because a daemonised 2.6 master
closes stderr after its first start and the reason of a failed reload would
be lost; in the foreground it logs "Loading success." / "Loading failure!"
and HAProxy's alerts on every reload.

Identity: a PID from ``haproxy.pid`` is ours only if that process is alive
(not a zombie: daemonised masters are re-parented to PID 1, which may not
reap them) and its working directory is this load balancer's directory, so
a recycled PID is never signalled. The command line plays no part in it:
masters started by earlier versions (``-p haproxy.pid -f haproxy.cfg``,
relative) are adopted all the same, and keep that command line until they
are next started (a reload re-executes the master with its original
arguments).

Exits: a master's exit is an event (:class:`ExitWatcher`, one pidfd per
master), so a supervisor restarts it at once. A 2.6 master exits when its
worker dies (``master-worker`` without ``no-exit-on-failure``), about 5 ms
after it, so watching masters alone covers killed and crashed workers too.

Reloads go through the master CLI (``reload``); the master re-executes itself,
the new worker takes the listening sockets over from the old one
(``expose-fd listeners``) and old workers finish their connections, bounded
by ``hard-stop-after``. HAProxy 2.6 does not report a reload's outcome on the
CLI, so :meth:`HaproxyProcess.reload` watches the log and ``show proc`` until
a new worker serves the stats socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lbaas.dataplane import runtime
from lbaas.dataplane.errors import ConfigCheckError, ProcessError, RuntimeApiError
from lbaas.dataplane.render import MAX_MAXCONN

LOG = logging.getLogger(__name__)

LOG_ROTATE_BYTES = 1 << 20  # haproxy.log is truncated past 1 MiB (the master appends)
_ALERT = re.compile(r"^\[(ALERT|WARNING)\]\s+\(\d+\)\s*:\s*(.*)$")

# Masters this process started and has not reaped yet (Popen objects by PID).
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


def _reap(only: int | None = None) -> None:
    """Collect exited masters this process started (all of them, or just ``only``).

    Checking one PID reaps only that one: with hundreds of load balancers,
    polling every child on every liveness check would cost O(n) each.
    """
    with _children_lock:
        if only is not None:
            pairs = [(only, _children[only])] if only in _children else []
        else:
            pairs = list(_children.items())
        for pid, proc in pairs:
            if proc.poll() is not None:
                del _children[pid]


def track_child(proc: subprocess.Popen[bytes]) -> None:
    """Remember a detached process this process started (an HAProxy master, a keepalived),
    so that it is reaped when it exits (:class:`ExitWatcher`, :func:`process_alive`)."""
    with _children_lock:
        _children[proc.pid] = proc


# Files of a load balancer's directory that its haproxy.cfg names too (the
# agent passes these to render.ConfigPaths; the directory is HAProxy's cwd).
STATS_SOCKET = "stats.sock"
SERVER_STATE = "servers.state"


@dataclass(frozen=True)
class LbFiles:
    """The files of one load balancer under ``root`` (``<base_path>/<lb_id>``)."""

    root: Path

    @property
    def cfg(self) -> Path:
        """The installed configuration (the truth HAProxy runs)."""
        return self.root / "haproxy.cfg"

    @property
    def new(self) -> Path:
        """A candidate configuration being checked."""
        return self.root / "haproxy.cfg.new"

    @property
    def failed(self) -> Path:
        """The last configuration HAProxy refused (kept for the operator)."""
        return self.root / "haproxy.cfg.failed"

    @property
    def good(self) -> Path:
        """The last configuration that served (restored when a reload fails)."""
        return self.root / "haproxy.cfg.good"

    @property
    def spec(self) -> Path:
        """The last applied spec (JSON), so a restarted agent can still diff and restart."""
        return self.root / "spec.json"

    @property
    def dirty(self) -> Path:
        """Marker: runtime API changes left the process differing from haproxy.cfg."""
        return self.root / "runtime.dirty"

    @property
    def retired(self) -> Path:
        """The last counters of workers retired by reloads (JSON, newest last)."""
        return self.root / "retired-stats.json"

    @property
    def pid(self) -> Path:
        """The master's PID (written by HAProxy, ``-p``)."""
        return self.root / "haproxy.pid"

    @property
    def master_socket(self) -> Path:
        """The master CLI (``-S``)."""
        return self.root / "master.sock"

    @property
    def stats_socket(self) -> Path:
        """The worker's runtime API (``stats socket`` in haproxy.cfg)."""
        return self.root / STATS_SOCKET

    @property
    def server_state(self) -> Path:
        """Servers' health states handed from a worker to the next on reload."""
        return self.root / SERVER_STATE

    @property
    def log(self) -> Path:
        """The master's stdout and stderr."""
        return self.root / "haproxy.log"


def connection_ceiling() -> int:
    """The largest global maxconn HAProxy can get file descriptors for here.

    HAProxy needs about 2.5 descriptors per connection (two sockets, and
    pipes for splicing) and raises its own
    soft limit up to the hard one (``ulimit -Hn``); beyond that it refuses
    to start ("Cannot raise FD limit").
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return MAX_MAXCONN
    return max(100, min(MAX_MAXCONN, (hard - 512) // 3))


def command_line(haproxy_cmd: str, files: LbFiles) -> list[str]:
    """The master's arguments for ``files``, to run with ``files.root`` as working directory.

    The pid file and the configuration are named by absolute paths (with the
    load balancer id); the master socket relatively, within the UNIX socket
    path limit whatever the length of ``base_path``.
    """
    root = files.root.resolve()
    return [haproxy_cmd, "-W", "-S", f"unix@{files.master_socket.name},mode,600",
            "-p", str(root / files.pid.name), "-f", str(root / files.cfg.name)]


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def process_alive(pid: int, cwd: Path | None = None) -> bool:
    """True if ``pid`` runs (zombies are dead) and, if given, its working directory is ``cwd``."""
    _reap(pid)
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if cwd is None:
        return True
    try:
        actual = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    # The kernel gives the resolved path: compare as given first (no resolve() syscalls).
    return actual == str(cwd) or Path(actual) == cwd.resolve()


class ExitWatcher:
    """Calls ``on_exit(key)`` the moment a watched process exits (an HAProxy master, a
    keepalived): an event, no polling.

    Each watched process is a pidfd (``pidfd_open(2)``, Linux 5.3), which
    becomes readable when the process exits, whether it is a child of this
    process or an adopted master of an earlier lbaas (re-parented elsewhere,
    so ``waitpid`` cannot see it); one daemon thread waits on all of them
    with epoll. ``on_exit`` runs in that thread and must return quickly.
    Masters this process started are reaped there too. Where pidfds are not
    available, :meth:`watch` watches nothing and the caller's periodic pass
    is the only detection.
    """

    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._by_key: dict[str, tuple[int, int]] = {}  # key -> (pidfd, pid)
        self._by_fd: dict[int, tuple[str, int]] = {}  # pidfd -> (key, pid)
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lbaas-haproxy-exits",
                                        daemon=True)
        self._thread.start()

    def watch(self, key: str, pid: int, cwd: Path) -> bool:
        """Watch ``pid`` under ``key`` (replacing any other process watched under it).

        The process must run in ``cwd`` (checked after its pidfd is open, so a
        recycled PID is never watched). Returns False if it does not run (then
        ``on_exit`` will not be called for it); True if it is watched, or
        runs but cannot be watched (no pidfd support).
        """
        with self._lock:
            if self._closed:
                return process_alive(pid, cwd)
            current = self._by_key.get(key)
            if current is not None and current[1] == pid:
                return True
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError as e:  # ENOSYS: an older kernel
            LOG.debug("pidfd_open(%d) failed (%s): HAProxy exits are found by polling", pid, e)
            return process_alive(pid, cwd)
        if not process_alive(pid, cwd):
            os.close(fd)
            return False
        with self._lock:
            if self._closed:
                os.close(fd)
                return True
            self._forget(key)
            self._by_key[key] = (fd, pid)
            self._by_fd[fd] = (key, pid)
            self._epoll.register(fd, select.EPOLLIN)
        return True

    def watched(self, key: str) -> int | None:
        """The PID watched under ``key`` (alive: its exit has not been seen), or None."""
        entry = self._by_key.get(key)
        return entry[1] if entry is not None else None

    def unwatch(self, key: str) -> None:
        """Stop watching ``key`` and every key under it (``key/...``), before stopping
        those processes on purpose."""
        with self._lock:
            for watched in [k for k in self._by_key if k == key or k.startswith(key + "/")]:
                self._forget(watched)

    def _forget(self, key: str) -> None:
        entry = self._by_key.pop(key, None)
        if entry is not None:
            fd = entry[0]
            del self._by_fd[fd]
            self._epoll.unregister(fd)
            os.close(fd)

    def close(self) -> None:
        """Stop the thread and close every pidfd (the processes are not touched)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        os.eventfd_write(self._wake, 1)
        self._thread.join(10)
        with self._lock:
            for key in list(self._by_key):
                self._forget(key)
            self._epoll.close()
            os.close(self._wake)

    def _run(self) -> None:
        while True:
            try:
                events = self._epoll.poll()
            except InterruptedError:
                continue
            exited: list[tuple[str, int]] = []
            with self._lock:
                if self._closed:
                    return
                for fd, _ in events:
                    if fd == self._wake:
                        continue
                    entry = self._by_fd.get(fd)
                    # A pidfd is readable only once its process has exited; the
                    # readiness check guards against an event for a pidfd that was
                    # closed, its number reused, in between.
                    if entry is None or not select.select([fd], [], [], 0)[0]:
                        continue
                    self._forget(entry[0])
                    exited.append(entry)
            for key, pid in exited:
                _reap(pid)
                try:
                    self._on_exit(key)
                except Exception:  # the watcher must outlive any callback
                    LOG.exception("HAProxy exit handler failed for %s (PID %d)", key, pid)


def _alerts(text: str) -> str:
    """HAProxy's alert lines of ``text``, without the pid decoration, one per line."""
    lines = []
    for line in text.splitlines():
        m = _ALERT.match(line.strip())
        if m and m.group(1) == "ALERT":
            lines.append(m.group(2).strip())
    return "\n".join(lines)


def check_config(haproxy_cmd: str, path: Path, timeout: float = 30.0) -> None:
    """``haproxy -c -f path``; raises :class:`ConfigCheckError` with HAProxy's alerts."""
    try:
        proc = subprocess.run([haproxy_cmd, "-c", "-f", path.name], cwd=path.parent,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigCheckError(f"could not run '{haproxy_cmd} -c': {e}") from e
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        raise ConfigCheckError("HAProxy refused the configuration: "
                               + (_alerts(output) or output.strip()[-2000:]))


class HaproxyProcess:
    """The HAProxy of one load balancer directory (not thread-safe; callers serialise).

    Timeouts are seconds.
    """

    def __init__(self, files: LbFiles, haproxy_cmd: str = "/usr/sbin/haproxy",
                 start_timeout: float = 10.0, reload_timeout: float = 15.0,
                 stop_timeout: float = 10.0) -> None:
        self.files = files
        self.haproxy_cmd = haproxy_cmd
        self.start_timeout = start_timeout
        self.reload_timeout = reload_timeout
        self.stop_timeout = stop_timeout
        self.master = runtime.MasterClient(files.master_socket)
        self.stats = runtime.StatsClient(files.stats_socket)

    # -- state ---------------------------------------------------------------
    def recorded_pid(self) -> int | None:
        """The PID in the pid file, unchecked (it may be dead, or another process now)."""
        try:
            with open(self.files.pid, "rb") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """The master's PID if it is alive and ours, else None."""
        pid = self.recorded_pid()
        return pid if pid is not None and process_alive(pid, self.files.root) else None

    def alive(self) -> bool:
        """True if the master runs."""
        return self.pid() is not None

    def processes(self) -> runtime.ProcessList | None:
        """``show proc``, or None if the master does not answer."""
        try:
            return self.master.show_proc()
        except RuntimeApiError:
            return None

    def _log_offset(self) -> int:
        try:
            size = self.files.log.stat().st_size
        except OSError:
            return 0
        if size > LOG_ROTATE_BYTES:
            os.truncate(self.files.log, 0)  # the master writes with O_APPEND
            return 0
        return size

    def _log_since(self, offset: int) -> str:
        try:
            with self.files.log.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- start ---------------------------------------------------------------
    def start(self, preexec: Callable[[], None] | None = None) -> runtime.ProcessList:
        """Start HAProxy on the installed haproxy.cfg and wait until a worker serves.

        ``preexec`` (from the placement) runs in the child before ``exec`` to
        enter the load balancer's network namespace; reloads need none (the
        master re-executes itself where it runs). Raises :class:`ProcessError`
        with HAProxy's alerts (e.g. "cannot bind socket") if it exits or does
        not serve within ``start_timeout``.
        """
        for stale in (self.files.master_socket, self.files.pid, self.files.stats_socket):
            stale.unlink(missing_ok=True)
        # A new process starts from its configuration alone (servers assumed
        # UP until checked): states saved for an earlier reload are stale.
        self.files.server_state.write_text(runtime.EMPTY_SERVER_STATE)
        offset = self._log_offset()
        log = self.files.log.open("ab")
        try:
            proc = subprocess.Popen(
                command_line(self.haproxy_cmd, self.files), cwd=self.files.root,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                close_fds=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as e:
            raise ProcessError(f"could not start HAProxy: {e}") from e
        finally:
            log.close()
        track_child(proc)
        deadline = time.monotonic() + self.start_timeout
        stats_socket = str(self.files.stats_socket)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProcessError("HAProxy did not start: " + (
                    _alerts(self._log_since(offset)) or f"exit status {proc.returncode}"))
            # The master binds the stats socket before it forks the worker, and a
            # connection waits in its backlog until the worker serves: one blocking
            # question instead of polling both sockets.
            if os.path.exists(stats_socket):
                try:
                    pid = runtime.StatsClient(self.files.stats_socket, max(
                        0.05, deadline - time.monotonic())).show_info().get("Pid")
                except RuntimeApiError:
                    pid = None
                procs = self.processes() if pid else None
                if procs is not None and pid in {str(w) for w in procs.workers}:
                    return procs
            time.sleep(0.002)
        self._kill(proc.pid, ())
        raise ProcessError(f"HAProxy did not serve within {self.start_timeout:g} s: "
                           + _alerts(self._log_since(offset)))

    def _serves(self, worker: int) -> bool:
        try:
            return self.stats.show_info().get("Pid") == str(worker)
        except RuntimeApiError:
            return False

    # -- reload --------------------------------------------------------------
    def reload(self) -> runtime.ProcessList:
        """Seamless reload of the installed haproxy.cfg; returns the new process list.

        Verified: a new worker must appear in ``show proc`` and answer the
        stats socket. Raises :class:`ProcessError` with HAProxy's alerts if
        the master reports "Loading failure!" (the old worker keeps serving)
        or nothing changes within ``reload_timeout``.
        """
        before = self.processes()
        if before is None:
            raise ProcessError("HAProxy's master socket does not answer; cannot reload")
        offset = self._log_offset()
        self.master.reload()
        deadline = time.monotonic() + self.reload_timeout
        while time.monotonic() < deadline:
            logged = self._log_since(offset)
            if "Loading failure" in logged:
                # The master re-executes once more (into "wait mode", keeping the
                # old workers); wait until its CLI answers again so that the
                # next operation finds it.
                while time.monotonic() < deadline and self.processes() is None:
                    time.sleep(0.01)
                raise ProcessError("HAProxy refused the new configuration on reload, the "
                                   "previous one keeps serving: "
                                   + (_alerts(logged) or "no message"))
            procs = self.processes()
            if procs is not None:
                new = [w for w in procs.workers if w not in before.workers]
                if new and self._serves(new[0]):
                    return procs
            time.sleep(0.01)
        raise ProcessError(f"HAProxy did not take over the new configuration within "
                           f"{self.reload_timeout:g} s: " + _alerts(self._log_since(offset)))

    # -- stop ----------------------------------------------------------------
    def stop(self, drain: float = 0.0) -> None:
        """Stop the master and all its workers (SIGTERM, then SIGKILL); idempotent.

        ``drain`` > 0 (seconds): a soft stop first (SIGUSR1: the workers stop
        listening and finish the connections they have), waited for that long.
        """
        pid = self.pid()
        if pid is None:
            return
        procs = self.processes()
        workers = (procs.workers + procs.old_workers) if procs else ()
        if drain > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
            deadline = time.monotonic() + drain
            while time.monotonic() < deadline and any(
                    process_alive(p, self.files.root) for p in (pid, *workers)):
                time.sleep(0.01)
        self._kill(pid, workers)

    def _kill(self, master: int, workers: tuple[int, ...]) -> None:
        if process_alive(master, self.files.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, signal.SIGTERM)  # the master stops its workers
        deadline = time.monotonic() + self.stop_timeout
        pending = [p for p in (master, *workers) if process_alive(p, self.files.root)]
        while pending and time.monotonic() < deadline:
            time.sleep(0.01)
            pending = [p for p in pending if process_alive(p, self.files.root)]
        for p in pending:
            LOG.warning("HAProxy process %d in %s ignored SIGTERM; killing it", p,
                        self.files.root)
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        _reap()
