"""HAProxy's runtime API: the stats socket and the master CLI, and their answers parsed.

Two UNIX sockets per load balancer (management manual, sections 9.3 and 9.4):

- the **stats socket** (``stats socket ... level admin``), served by the
  current worker: ``show stat``, ``show info``, and the server commands used
  for hitless member changes (``add server``, ``set server ... state|weight|
  addr``, ``enable health``, ``del server``);
- the **master socket** (``-S``), served by the master process: ``show proc``
  and ``reload``.

One connection per command, but for the health polls' ``show info;show
stat``, which may go over a connection kept open in interactive mode
(``prompt``, see :meth:`StatsClient.show_info_stat`); the master CLI answers
only after the client shuts down its write side. Commands sent with :meth:`StatsClient.execute` are
prefixed with ``set severity-output number`` so that a refusal is recognisable
(``[3]: No such server.``) without matching on message text.

The typed reports here (:class:`StatRow`, :class:`LoadBalancerStats`,
:class:`WorkerStats`, :class:`ServerHealth`, :class:`LoadBalancerHealth`) are
what the agent hands to the health manager; they are frozen and JSON-friendly
(``to_dict``).

Worker identity. HAProxy's counters live in a worker process and start at
zero in every new worker (each reload and restart). A reading therefore
carries the identity of the worker that produced it, ``"<Pid>@<Start_time_sec>"``
from ``show info`` (the start time keeps a recycled PID from passing for the
same worker); ``show info`` and ``show stat`` are sent on one connection so
that both answers come from the same worker.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import operator
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbaas.dataplane.errors import RuntimeApiError

DEFAULT_TIMEOUT = 5.0  # seconds for one command
_SEVERITY = re.compile(r"^\[(\d)\]: ?(.*)$", re.M)
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


def _connect(path: Path, timeout: float) -> socket.socket:
    """A blocking socket connected to ``path``, each call on it bounded by ``timeout``
    seconds in the kernel (``SO_SNDTIMEO``, ``SO_RCVTIMEO``: an expired wait is an
    OSError). Blocking calls, not Python's socket timeouts: those put the socket in
    non-blocking mode and add a ``poll`` before every call, which costs a health poll
    of a thousand HAProxies a third more CPU. Raises OSError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd = None
    try:
        seconds = max(timeout, 0.001)  # 0 would mean no limit
        limit = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        target = str(path)
        if len(os.fsencode(target)) > _SUN_PATH_MAX - 7:
            # Too long for sockaddr_un: reach it through /proc/self/fd/<dir fd>.
            dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
            target = f"/proc/self/fd/{dir_fd}/{path.name}"
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


@contextlib.contextmanager
def _connected(path: Path, timeout: float) -> Iterator[socket.socket]:
    """:func:`_connect`, closed at the end of the block."""
    sock = _connect(path, timeout)
    try:
        yield sock
    finally:
        sock.close()


_PROMPT = b"\n> "  # what ends every answer in interactive mode (management manual 9.3)


class _Closed(OSError):
    """A kept connection was closed by HAProxy (idle ``stats timeout``, worker gone)."""


def _interactive(path: Path, timeout: float) -> socket.socket:
    """A connection to ``path`` switched to interactive mode (``prompt``): it stays open
    after each answer, which ends with :data:`_PROMPT`. Raises OSError."""
    sock = _connect(path, timeout)
    try:
        _exchange(sock, "prompt")
    except BaseException:
        sock.close()
        raise
    return sock


def _exchange(sock: socket.socket, command: str) -> str:
    """Send ``command`` (commands separated by ``;``) on an interactive connection;
    the answer as a connection of its own gets it (each command's answer ends with a
    prompt here: they are taken out). For commands whose answers hold no line that
    starts with ``> `` (``show info``, ``show stat``). Raises :class:`_Closed` if
    HAProxy closed the connection, OSError otherwise (a timeout)."""
    try:
        sock.sendall(command.encode() + b"\n")
    except (BrokenPipeError, ConnectionResetError) as e:
        raise _Closed(str(e)) from e
    prompts = command.count(";") + 1
    answer = bytearray()
    while not (answer.endswith(_PROMPT) and answer.count(_PROMPT) >= prompts):
        try:
            data = sock.recv(65536)
        except ConnectionResetError as e:
            raise _Closed(str(e)) from e
        if not data:
            raise _Closed("closed by HAProxy")
        answer += data
    return answer.replace(_PROMPT, b"\n").decode(errors="replace")


def send(path: Path, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Send one ``command`` line to the UNIX socket ``path``; return the whole answer.

    Raises :class:`RuntimeApiError` if the socket is missing, refuses, or
    does not answer within ``timeout`` seconds.
    """
    if "\n" in command or "\r" in command:
        raise RuntimeApiError(f"refusing a multi-line runtime command: {command!r}")
    try:
        with _connected(path, timeout) as sock:
            sock.sendall(command.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            # MSG_WAITALL: one call returns the whole of a short answer, at its end.
            while data := sock.recv(65536, socket.MSG_WAITALL):
                chunks.append(data)
    except OSError as e:
        raise RuntimeApiError(f"HAProxy socket {path.name} did not answer: {e}") from e
    return b"".join(chunks).decode(errors="replace")


# -- reports -------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass(frozen=True)
class StatRow:
    """One row of ``show stat`` (management manual 9.1 names the CSV fields).

    Counters are totals since the worker started (a reload starts them over);
    ``bin``/``bout`` are bytes; ``lastchg`` and ``downtime`` are seconds;
    ``rate`` is sessions per second over the last second. ``None`` means
    HAProxy leaves the field empty for this row type.
    """

    proxy: str  # pxname: a listener id, or "<pool id>:<listener id>"
    name: str  # svname: FRONTEND, BACKEND, or a member id
    type: str  # frontend | backend | server | listener
    status: str  # OPEN, UP, DOWN, MAINT, DRAIN, NOLB, "no check", "UP 1/3"...
    scur: int = 0  # current sessions
    smax: int = 0  # highest scur seen
    slim: int | None = None  # session limit (maxconn)
    stot: int = 0  # cumulative sessions
    bin: int = 0  # bytes received from clients
    bout: int = 0  # bytes sent to clients
    dreq: int | None = None  # requests denied
    ereq: int | None = None  # request errors (frontends)
    econ: int | None = None  # connection errors to servers
    eresp: int | None = None  # response errors
    weight: int | None = None  # effective weight (servers), total (backends)
    act: int | None = None  # active servers (backend) / 1 if active (server)
    bck: int | None = None  # backup servers (backend) / 1 if backup (server)
    chkfail: int | None = None  # failed checks
    downtime: int | None = None  # seconds spent DOWN
    lastchg: int | None = None  # seconds since the last UP/DOWN change
    check_status: str | None = None  # L4OK, L7OK, L7STS, L4CON, PROCOK...
    rate: int | None = None  # sessions per second
    req_tot: int | None = None  # HTTP requests (http mode)

    @property
    def listener_id(self) -> str | None:
        """The listener this row belongs to (frontends and ``<pool>:<listener>`` backends)."""
        return self.proxy.rsplit(":", 1)[-1] if ":" in self.proxy or \
            self.type == "frontend" else None

    @property
    def pool_id(self) -> str | None:
        """The pool of a backend or server row."""
        return self.proxy.split(":", 1)[0] if ":" in self.proxy else None

    @property
    def member_id(self) -> str | None:
        """The member of a server row."""
        return self.name if self.type == "server" else None


_TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}
_FIELDS = tuple(f.name for f in dataclasses.fields(StatRow))  # in the order of StatRow()
_HEADER_NAMES = {"proxy": "pxname", "name": "svname"}  # HAProxy's names of the others: ours
_NUMBERS = _FIELDS[4:_FIELDS.index("check_status")]  # scur .. lastchg
_ZERO_FIELDS = ("scur", "smax", "stot", "bin", "bout")  # counters: empty means 0
_DEFAULTS = tuple(0 if name in _ZERO_FIELDS else None for name in _NUMBERS)
_AFTER = _FIELDS.index("check_status")
assert _FIELDS[:4] == ("proxy", "name", "type", "status") and \
    _FIELDS[_AFTER + 1:] == ("rate", "req_tot")


@functools.lru_cache(maxsize=8)
def _layout(header_line: str) -> tuple[int, Callable[[Sequence[str]], tuple[str, ...]]]:
    """From a ``show stat`` header: (fields to split a line into, a picker of the
    :class:`StatRow` fields, in its order, from a line's fields).

    A line is split only up to the last field used (the others stay one string); a
    field HAProxy does not have is read from an empty field added past them.
    """
    header = next(csv.reader([header_line[2:]]))
    if "pxname" not in header or "svname" not in header:
        raise RuntimeApiError(f"unexpected 'show stat' header: {header_line[:200]!r}")
    where = [header.index(h) if (h := _HEADER_NAMES.get(f, f)) in header else None
             for f in _FIELDS]
    last = max(i for i in where if i is not None)
    width = last + 2  # the fields used, then the rest of the line (made the empty one)
    return width, operator.itemgetter(*(width - 1 if i is None else i for i in where))


def parse_stat(text: str) -> tuple[StatRow, ...]:
    """Rows of a ``show stat`` answer (CSV whose header line starts with ``# ``).

    Every health poll that asks HAProxy parses one: each line is split only
    up to the last field a :class:`StatRow` holds. Lines holding a double quote
    (HAProxy quotes fields such as a check's text when they contain commas) go
    through :mod:`csv`.
    """
    return tuple(map(_stat_row, _stat_fields(text)))


def _stat_fields(text: str) -> list[tuple[str, ...]]:
    """Each line of a ``show stat`` answer as the text of the :class:`StatRow` fields,
    in their order (see :func:`parse_stat`)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise RuntimeApiError(f"unexpected 'show stat' answer: {text[:200]!r}")
    width, pick = _layout(lines[0])
    picked = []
    for line in lines[1:]:
        if not line.strip():
            continue
        values = line.split(",", width - 1) if '"' not in line else next(csv.reader([line]))
        if len(values) < width:
            values += [""] * (width - len(values))
        else:
            values[width - 1] = ""  # the rest of the line: not a field of ours
        picked.append(pick(values))
    return picked


def _stat_row(v: tuple[str, ...]) -> StatRow:
    rate, req_tot = v[_AFTER + 1], v[_AFTER + 2]
    fields: list[Any] = [v[0], v[1], _TYPES.get(v[2], "?"), v[3]]
    fields += [int(x) if x else d for x, d in zip(v[4:_AFTER], _DEFAULTS, strict=True)]
    fields += [v[_AFTER] or None, int(rate) if rate else None,
               int(req_tot) if req_tot else None]
    return StatRow(*fields)


def parse_info(text: str) -> dict[str, str]:
    """``show info`` as a dict (``Pid``, ``Uptime_sec``, ``CurrConns``, ``Maxconn``...)."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def worker_identity(info: dict[str, str]) -> str:
    """``"<Pid>@<Start_time_sec>"``: one worker process, for as long as it lives.

    Raises :class:`RuntimeApiError` if ``show info`` lacks either field.
    """
    pid, started = info.get("Pid"), info.get("Start_time_sec")
    if not pid or not started:
        raise RuntimeApiError("'show info' names no Pid and Start_time_sec")
    return f"{pid}@{started}"


def parse_info_stat(text: str) -> tuple[str, tuple[StatRow, ...]]:
    """The answer to ``show info;show stat``: (worker identity, rows).

    The ``show stat`` part starts at its CSV header (the first line starting
    with ``# ``). Raises :class:`RuntimeApiError` for anything else.
    """
    worker, stat = _split_info_stat(text)
    return worker, parse_stat(stat)


def _split_info_stat(text: str) -> tuple[str, str]:
    """(worker identity, the ``show stat`` part) of a ``show info;show stat`` answer."""
    head, sep, tail = text.partition("\n# ")
    if not sep:
        raise RuntimeApiError(f"unexpected 'show info;show stat' answer: {text[:200]!r}")
    return worker_identity({"Pid": _info_field(head, "Pid"),
                            "Start_time_sec": _info_field(head, "Start_time_sec")}), \
        "# " + tail


def _info_field(text: str, name: str) -> str:
    """The value of ``name`` in a ``show info`` answer ("" if absent)."""
    at = ("\n" + text).find(f"\n{name}:")
    if at < 0:
        return ""
    end = text.find("\n", at)
    return text[at + len(name) + 1:end if end >= 0 else len(text)].strip()


EMPTY_SERVER_STATE = "1\n"  # a server state file of format version 1 holding no server


def server_state_to_keep(text: str, keep: Collection[tuple[str, str]]) -> str:
    """The server state file to load on reload, from a ``show servers state`` answer.

    ``text`` is the answer (management manual 9.3: a version line, ``1``, a
    ``# be_id be_name srv_id srv_name ...`` header, one line per server);
    ``keep`` holds the ``(backend, server)`` names whose state may carry over.
    A line is kept only when its server is in ``keep`` and was in service
    (``srv_admin_state`` 0: neither in maintenance nor draining), so the
    configuration alone decides admin state and weight; callers put in
    ``keep`` only servers that are health checked in the new configuration,
    since HAProxy would otherwise leave a server restored as DOWN down for
    good. Anything unexpected gives :data:`EMPTY_SERVER_STATE`.
    """
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != "1" or not lines[1].startswith("#"):
        return EMPTY_SERVER_STATE
    header = lines[1].lstrip("#").split()
    try:
        be, srv, admin = (header.index(k) for k in ("be_name", "srv_name", "srv_admin_state"))
    except ValueError:
        return EMPTY_SERVER_STATE
    kept = [line for line in lines[2:]
            if len(words := line.split()) == len(header)
            and (words[be], words[srv]) in keep and words[admin] == "0"]
    return "\n".join(["1", lines[1], *kept]) + "\n"


@dataclass(frozen=True)
class ProcessList:
    """``show proc`` on the master socket.

    ``workers`` serve the current configuration; ``old_workers`` finish the
    connections of previous ones (bounded by ``hard-stop-after``).
    """

    master: int
    reloads: int
    failed_reloads: int
    workers: tuple[int, ...]
    old_workers: tuple[int, ...]


def parse_proc(text: str) -> ProcessList:
    """Parse ``show proc`` (management manual 9.4); raises :class:`RuntimeApiError`."""
    section = "master"
    master = reloads = failed = None
    workers: list[int] = []
    old: list[int] = []
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.strip("# ").lower()
            section = {"workers": "workers", "old workers": "old"}.get(title, section
                                                                      if title.startswith("<pid>")
                                                                      else "other")
            continue
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue
        if parts[1] == "master":
            master, reloads = int(parts[0]), int(parts[2])
            m = re.search(r"failed: (\d+)", line)
            failed = int(m.group(1)) if m else 0
        elif parts[1] == "worker":
            (workers if section == "workers" else old).append(int(parts[0]))
    if master is None or reloads is None or failed is None:
        raise RuntimeApiError(f"unexpected 'show proc' answer: {text[:200]!r}")
    return ProcessList(master=master, reloads=reloads, failed_reloads=failed,
                       workers=tuple(workers), old_workers=tuple(old))


COUNTER_ROW_TYPES = ("frontend", "server")  # rows whose counters the health manager keeps
# Fields that move with time alone: left out when telling two readings apart.
_TIME_FIELDS = ("lastchg", "downtime", "rate")
_significant = operator.itemgetter(*(i for i, name in enumerate(_FIELDS)
                                     if name not in _TIME_FIELDS))
_row_key = operator.attrgetter(*(f.name for f in dataclasses.fields(StatRow)
                                 if f.name not in _TIME_FIELDS))


@dataclass(frozen=True)
class WorkerStats:
    """Counters of an HAProxy worker that no longer serves the current configuration.

    ``live``: True for an old worker still finishing its connections after a
    reload (read through the master CLI); False for the last reading taken
    just before the worker was retired by a reload (kept by the agent, so
    that traffic between the last poll and the reload is not lost). ``rows``
    are its frontend and server rows only.
    """

    worker: str  # "<Pid>@<Start_time_sec>"
    live: bool
    rows: tuple[StatRow, ...] = ()


@dataclass(frozen=True)
class AmphoraHealth:
    """What the agent sees of one amphora of an ACTIVE_STANDBY load balancer.

    ``running``: its HAProxy and its keepalived run and its plumbing is
    whole. ``vrrp_state``: what its keepalived last reported (MASTER,
    BACKUP, FAULT, STOP), None while keepalived is not running. ``error``:
    why it cannot serve and will not come back by itself (its network
    namespace or interface is gone; a restart failed): the controller then
    replaces it (amphora failover).
    """

    id: str
    running: bool
    vrrp_state: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LoadBalancerStats:
    """Parsed ``show stat`` of one load balancer's HAProxy (empty when not running).

    ``running`` is False when no HAProxy process runs for the load balancer
    (dead, or never started on this host); the agent may then set ``error``
    to why it cannot start it. ``error`` is set, with no rows, when the
    process runs but its sockets did not answer (e.g. overloaded): nothing
    was observed. ``worker`` is the identity of the current worker
    that produced ``rows``; ``others`` are the readings of old and retired
    workers (see :class:`WorkerStats`), for counters that survive reloads.

    ACTIVE_STANDBY: ``amphorae`` says how each amphora is; ``rows`` and
    ``worker`` come from the one that holds the VIP (else any that runs),
    the other's workers are among ``others`` (its counters count too);
    ``running`` is True while any amphora's HAProxy runs.

    ``taken_at``: a reading kept and handed out later (a remote agent's, from
    its heartbeat) says since when it may be old: ``time.monotonic()`` of the
    process holding it, in seconds, no later than the moment it was taken
    (the configuration it reflects was applied then or later). None: it
    reflects the configuration HAProxy served when it was asked for (read
    then, or kept by an agent that forgets it at every change). Not part of
    equality.
    """

    lb_id: str
    running: bool
    rows: tuple[StatRow, ...] = ()
    worker: str | None = None
    others: tuple[WorkerStats, ...] = ()
    error: str | None = None
    amphorae: tuple[AmphoraHealth, ...] = ()
    taken_at: float | None = dataclasses.field(default=None, compare=False)

    @property
    def frontends(self) -> tuple[StatRow, ...]:
        """One row per listener."""
        return tuple(r for r in self.rows if r.type == "frontend")

    @property
    def backends(self) -> tuple[StatRow, ...]:
        """One row per (pool, listener)."""
        return tuple(r for r in self.rows if r.type == "backend")

    @property
    def servers(self) -> tuple[StatRow, ...]:
        """One row per member and backend."""
        return tuple(r for r in self.rows if r.type == "server")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for a remote agent)."""
        return dataclasses.asdict(self)

    def key(self) -> tuple[Any, ...]:
        """What this reading says, for telling two readings apart: equal keys, same news.

        Worker identities, and every row's status, weight, check result and
        counters, without the fields that change with time alone (seconds
        since the last change, downtime, sessions per second).
        """
        return (self.lb_id, self.running, self.error, self.worker, self.amphorae,
                tuple(map(_row_key, self.rows)),
                tuple((o.worker, o.live, tuple(map(_row_key, o.rows))) for o in self.others))


def counter_rows(rows: tuple[StatRow, ...]) -> tuple[StatRow, ...]:
    """The rows of ``rows`` whose counters are kept (:data:`COUNTER_ROW_TYPES`)."""
    return tuple(r for r in rows if r.type in COUNTER_ROW_TYPES)


def combine(lb_id: str, readings: Sequence[LoadBalancerStats]) -> LoadBalancerStats:
    """The readings of an ACTIVE_STANDBY load balancer's amphorae (each with its
    ``amphorae``: one per amphora on one host, or those of a whole agent) as one.

    ``amphorae`` of all; ``rows`` and ``worker`` from the reading of the
    amphora keepalived reports MASTER (else the first that runs), the other
    running workers among ``others``. A reading that runs with an ``error``
    (a socket did not answer) is the error of the whole, without rows: no
    counter moves on half a reading. None runs: not running, the first
    ``error`` given.
    """
    healths = tuple(a for r in readings for a in r.amphorae)
    running = [r for r in readings if r.running]
    if not running:
        return LoadBalancerStats(lb_id=lb_id, running=False, amphorae=healths,
                                 error=next((r.error for r in readings if r.error), None))
    failed = next((r.error for r in running if r.error is not None), None)
    if failed is not None:
        return LoadBalancerStats(lb_id=lb_id, running=True, error=failed, amphorae=healths)
    primary = min(running, key=lambda r: all(a.vrrp_state != "MASTER" for a in r.amphorae))
    others = list(primary.others)
    for r in running:
        if r is not primary:
            if r.worker is not None:
                others.append(WorkerStats(worker=r.worker, live=True, rows=counter_rows(r.rows)))
            others += r.others
    return LoadBalancerStats(lb_id=lb_id, running=True, rows=primary.rows,
                             worker=primary.worker, others=tuple(others), amphorae=healths)


@dataclass(frozen=True)
class ServerHealth:
    """What HAProxy thinks of one member in one backend.

    ``status``: UP, DOWN, MAINT, DRAIN, NOLB, "no check", or a transition such
    as "UP 1/3" (going down after 1 of 3 failed checks); ``check_status`` is
    the last check's result code (L7OK, L7STS, L4CON...) or None without a
    monitor; ``last_change`` is seconds since the last UP/DOWN change.
    """

    pool_id: str
    listener_id: str
    member_id: str
    status: str
    check_status: str | None
    weight: int | None
    last_change: int | None


@dataclass(frozen=True)
class LoadBalancerHealth:
    """Whether a load balancer's HAProxy runs, and each member's state in it."""

    lb_id: str
    alive: bool
    master_pid: int | None = None
    worker_pids: tuple[int, ...] = ()
    listeners: tuple[tuple[str, str], ...] = ()  # (listener id, OPEN | STOP | FULL)
    servers: tuple[ServerHealth, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for a remote agent)."""
        return dataclasses.asdict(self)


def health_from_stats(stats: LoadBalancerStats, master_pid: int | None,
                      workers: tuple[int, ...]) -> LoadBalancerHealth:
    """Reduce ``stats`` to :class:`LoadBalancerHealth`."""
    return LoadBalancerHealth(
        lb_id=stats.lb_id, alive=stats.running, master_pid=master_pid, worker_pids=workers,
        listeners=tuple((r.proxy, r.status) for r in stats.frontends),
        servers=tuple(ServerHealth(pool_id=r.pool_id or "", listener_id=r.listener_id or "",
                                   member_id=r.name, status=r.status,
                                   check_status=r.check_status, weight=r.weight,
                                   last_change=r.lastchg)
                      for r in stats.servers))


# -- clients -------------------------------------------------------------------


class StatsClient:
    """The stats socket of one HAProxy (answered by its current worker).

    A client asked to ``keep`` its connection (see :meth:`show_info_stat`)
    holds it until :meth:`close`: the caller must close it before HAProxy
    reloads or stops, since the worker that answers it serves it until the
    connection closes (an old worker stays alive for it, up to ``stats
    timeout``).
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        # show_info_stat(reuse=True): the last answer's fields (but _TIME_FIELDS), its rows
        self._last: tuple[tuple[tuple[str, ...], ...], tuple[StatRow, ...]] | None = None
        self._kept: socket.socket | None = None  # interactive connection (keep=True)
        self._kept_lock = threading.Lock()

    def close(self) -> None:
        """Close the kept connection, if any (waits for an answer on it in progress)."""
        with self._kept_lock:
            self._let_go()

    def _let_go(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def _ask_kept(self, command: str) -> str:
        """``command``'s answer over the kept interactive connection (opened if there is
        none; opened again once if HAProxy closed it); a connection of its own if the
        kept one is in use by another thread."""
        if not self._kept_lock.acquire(blocking=False):
            return self.raw(command)
        try:
            if self._kept is not None:
                try:
                    return _exchange(self._kept, command)
                except _Closed:  # its idle timeout, or the worker is gone: open another
                    self._let_go()
            self._kept = _interactive(self.path, self.timeout)
            return _exchange(self._kept, command)
        except OSError as e:
            self._let_go()
            raise RuntimeApiError(f"HAProxy socket {self.path.name} did not answer: {e}") \
                from e
        finally:
            self._kept_lock.release()

    def raw(self, command: str) -> str:
        """The answer to ``command`` as text, unchecked."""
        return send(self.path, command, self.timeout)

    def execute(self, command: str) -> str:
        """Run a command that changes state; raise :class:`RuntimeApiError` if refused.

        HAProxy's answer is prefixed with a severity (``[3]: No such server.``);
        severities 0-3 (emergency to error) are refusals.
        """
        answer = send(self.path, f"set severity-output number; {command}", self.timeout)
        for m in _SEVERITY.finditer(answer):
            if int(m.group(1)) <= 3:
                raise RuntimeApiError(f"HAProxy refused '{command}': {m.group(2).strip()}")
        return answer.strip()

    def show_stat(self) -> tuple[StatRow, ...]:
        """Every frontend, backend and server row."""
        return parse_stat(self.raw("show stat"))

    def show_info(self) -> dict[str, str]:
        """Process information (``Pid``, ``Uptime_sec``, ``CurrConns``...)."""
        return parse_info(self.raw("show info"))

    def show_info_stat(self, reuse: bool = False, keep: bool = False,
                       ) -> tuple[str, tuple[StatRow, ...]]:
        """(identity of the answering worker, its ``show stat`` rows), on one connection.

        ``keep``: over a connection kept open in interactive mode (``prompt``),
        used again by the next call with ``keep`` until :meth:`close`: a health
        poll of a thousand HAProxies then costs no ``connect`` and ``close`` per
        HAProxy (as measured: 14 us of CPU per answer, 104 us on a connection of
        its own).
        A connection HAProxy closed meanwhile (``stats timeout`` idle, a worker
        gone) is opened again, once.

        ``reuse``: if the answer says what the last one asked with ``reuse`` said,
        but for the fields that move with time alone (``lastchg``, ``downtime``,
        ``rate``), the rows of that answer are returned (the same tuple; those
        fields as they were then) and no row is built: the health poll of a quiet
        HAProxy, which keeps its reading when nothing is new, asks so.
        """
        command = "show info;show stat"
        worker, stat = _split_info_stat(self._ask_kept(command) if keep else self.raw(command))
        picked = _stat_fields(stat)
        if not reuse:
            return worker, tuple(map(_stat_row, picked))
        key = tuple(map(_significant, picked))
        last = self._last
        if last is not None and last[0] == key:
            return worker, last[1]
        rows = tuple(map(_stat_row, picked))
        self._last = (key, rows)
        return worker, rows


class MasterClient:
    """The master CLI of one HAProxy (``-S``)."""

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout

    def show_proc(self) -> ProcessList:
        """The master and its workers."""
        return parse_proc(send(self.path, "show proc", self.timeout))

    def worker_info_stat(self, pid: int) -> tuple[str, tuple[StatRow, ...]]:
        """``show info;show stat`` of worker ``pid`` (current or old), through the master."""
        return parse_info_stat(send(self.path, f"@!{int(pid)} show info; @!{int(pid)} show stat",
                                    self.timeout))

    def reload(self) -> None:
        """Ask the master to re-read its configuration (HAProxy 2.6 reports nothing back).

        The master re-executes itself, so the connection usually drops; the
        caller must verify the outcome (see ``haproxy.HaproxyProcess.reload``).
        """
        with contextlib.suppress(RuntimeApiError):
            send(self.path, "reload", self.timeout)
