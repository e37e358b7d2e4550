"""Amphorae on this host: one HAProxy per load balancer, changed as transactions.

:class:`Amphorae` does what an agent does for the load balancers it hosts;
it keeps no state in memory (but a cache of parsed files), everything is in
``<base_path>/<lb_id>/`` and in the running processes, so a restarted agent
adopts what runs. It is not thread-safe for one load balancer: the agent
serialises calls per load balancer (and runs different ones in parallel).

apply(spec) is a transaction (style item 7; Octavia's amphora agent
``api_server/loadbalancer.py`` and dataplaneapi's reload agent)::

    build the view -> running, members only changed?  (planned from the view
           this process applied, else from spec.json rendered again)
           -> runtime API (no reload, no haproxy -c: the server lines are the
              words "add server" took) -> render -> haproxy.cfg.new -> rename
              (a new member takes traffic before any file is written; the
              files are written before apply returns; refused: ``dirty``
              marked, and on as below, checked and reloaded)
    -> render -> unchanged and running?  -> nothing (no reload)
           -> write haproxy.cfg.new
           -> not running?  placement.prepare -> rename -> start -> announce
                            (the start parses it once; refused: .failed kept,
                            the last-known-good put back, raise)
           -> otherwise:    haproxy -c (refused: .failed kept, raise; the old
                            process keeps serving) -> rename (the file is the
                            truth from here on) -> reload (failed:
                            haproxy.cfg.failed kept, last-known-good restored as
                            haproxy.cfg, raise)
    -> haproxy.cfg.good and spec.json (fsync: the truth a restart starts
       from) updated

A dead HAProxy is started again the same way: the agent's supervision calls
apply() with the last applied spec, so a deleted or damaged ``haproxy.cfg``
is rendered again and started (never started as found on disk).

ACTIVE_STANDBY (namespace placement only). Each of the two amphorae has a
directory ``<base_path>/<lb_id>/<amphora_id>/`` with its HAProxy (the same
haproxy.cfg on both, changed by the transaction above, runtime API included)
and its keepalived (:mod:`~lbaas.dataplane.keepalived`), in its namespace
``amphora-<amphora_id>``. apply(spec)::

    amphorae on disk that the spec no longer has (replaced by a failover)
        -> retired one at a time: a MASTER hands the VIP over first
           (hold_vip, keepalived stopped: priority 0, the peer takes over,
           stragglers served for handover_grace, and the packets of requests
           in flight that reach the peer sent back here: forward_strays),
           then HAProxy drains, the peer stops forwarding and the namespace
           goes
    -> each amphora of the spec, BACKUP first and the one keepalived says is
       MASTER last: the HAProxy transaction, then keepalived started (after
       the gratuitous ARP of its address) or reloaded if keepalived.conf changed
       (a failure stops here: the load balancer is in ERROR with the reason,
       the MASTER, last, still serves what it served)
    -> until one amphora is MASTER (a new pair: ~3.5 advert intervals)
    -> ``<lb_id>/spec.json`` updated

The two amphorae may run on two hosts (``AmphoraSpec.host``, the agents
the scheduler chose): each host's agent gets the whole spec (keepalived
needs its peer's address) and runs only its own amphora
(:meth:`Amphorae.here`); a MASTER retired here hands the VIP over only by
its keepalived's stop (priority 0); waiting for a MASTER is then the
controller's (:class:`~lbaas.agent.remote.RemoteAgents`).

TLS files (certificates with their keys, CA bundles, CRLs, crt-lists) live in
``<lb_id>/certs/`` (mode 0700, files 0600), written before ``haproxy -c``;
a file whose content changed forces a reload even if haproxy.cfg did not
(HAProxy reads them only when a worker starts). Files no longer named are
removed once a new configuration serves. ``spec.json`` is written without
the files' contents, so no private key sits in it.

The last applied spec (``spec.json``) is used to diff only if rendering it
again gives exactly the installed file, so a stale or foreign spec can only
cost a reload, never a wrong runtime change.

Counters across reloads. A reload starts a new worker whose counters start
at zero; the old one finishes its connections and exits. Just before each
reload, the current worker's frontend and server counters are appended to
``retired-stats.json`` (the last :data:`RETIRED_KEEP` workers), and
:meth:`Amphorae.stats` reports them with the live old workers' counters (read
through the master CLI), so the health manager can count every byte a
worker accounted for up to its retirement.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lbaas.common import constants as c
from lbaas.dataplane import changes, keepalived, render, runtime
from lbaas.dataplane import spec as specs
from lbaas.dataplane.errors import DataplaneError, ProcessError, RenderError, RuntimeApiError
from lbaas.dataplane.haproxy import (
    SERVER_STATE,
    STATS_SOCKET,
    HaproxyProcess,
    LbFiles,
    check_config,
    connection_ceiling,
)
from lbaas.dataplane.keepalived import KeepalivedFiles, KeepalivedProcess, KeepalivedSettings
from lbaas.dataplane.placement import LocalPlacement, Placement
from lbaas.dataplane.render import LoadBalancerView
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec

LOG = logging.getLogger(__name__)

PING_CHECK = """#!/bin/sh
# lbaas: HAProxy external check for PING health monitors.
# HAProxy runs it as: <proxy address> <proxy port> <server address> <server port>
case "$3" in
  *:*) exec ping -6 -n -q -c 1 -W 1 "$3" >/dev/null 2>&1 ;;
  *)   exec ping -n -q -c 1 -W 1 "$3" >/dev/null 2>&1 ;;
esac
"""


RETIRED_KEEP = 8  # retired workers whose last counters are kept (retired-stats.json)
DEAD_RECHECK = 0.05  # seconds before a process found dead is looked at again
LISTING_SETTLE = 1.0  # seconds a directory's mtime must be old before its listing is kept


@dataclass(frozen=True)
class AmphoraSettings:
    """How amphorae run on this host (from ``[haproxy_amphora]``). Times in seconds."""

    base_path: Path
    haproxy_cmd: str = "/usr/sbin/haproxy"
    tuning: render.Tuning = field(default_factory=render.Tuning)
    check_timeout: float = 30.0
    start_timeout: float = 10.0
    reload_timeout: float = 15.0
    stop_timeout: float = 10.0
    drain_timeout: float = 2.0  # a removed member's connections may finish this long
    keepalived: KeepalivedSettings = field(default_factory=KeepalivedSettings)
    # A retired MASTER keeps serving clients that still send to its MAC this long
    # after its peer took the VIP (the peer's gratuitous ARPs reach them meanwhile).
    handover_grace: float = 1.0
    # This host's name ([DEFAULT] host): amphorae a spec places on another host run there
    # (:meth:`Amphorae.here`); None: every amphora of a spec runs here.
    host: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`Amphorae.apply` did.

    ``action``: ``unchanged`` (nothing to do), ``started``, ``runtime``
    (member changes through the runtime API, same worker) or ``reloaded``.
    ``commands`` counts runtime API commands sent. ACTIVE_STANDBY: each
    amphora's result in ``amphorae`` (in the order they were changed), and
    the top level says the most any of them needed (started > reloaded >
    runtime > unchanged), with no PIDs.
    """

    lb_id: str
    action: str
    master_pid: int | None
    worker_pids: tuple[int, ...] = ()
    commands: int = 0
    amphora_id: str | None = None
    amphorae: tuple[ApplyResult, ...] = ()

    @classmethod
    def of_amphorae(cls, lb_id: str, done: Sequence[ApplyResult]) -> ApplyResult:
        """The result of an ACTIVE_STANDBY load balancer whose amphorae did ``done``."""
        return cls(lb_id=lb_id, action=max((r.action for r in done), key=_ACTIONS.index),
                   master_pid=None, commands=sum(r.commands for r in done), amphorae=tuple(done))


_ACTIONS = ("unchanged", "runtime", "reloaded", "started")


@dataclass(frozen=True)
class _Unit:
    """One HAProxy in one directory: a SINGLE load balancer's (``amphora`` None), or one
    amphora's of an ACTIVE_STANDBY load balancer (which has a keepalived beside it)."""

    lb_id: str
    amphora: AmphoraSpec | None
    files: LbFiles
    proc: HaproxyProcess

    @property
    def amphora_id(self) -> str | None:
        return self.amphora.id if self.amphora is not None else None

    def label(self) -> str:
        return f"amphora {self.amphora.id}" if self.amphora else f"load balancer {self.lb_id}"


class Amphorae:
    """The HAProxy (and keepalived) processes of every load balancer under
    ``settings.base_path``."""

    def __init__(self, settings: AmphoraSettings, placement: Placement | None = None,
                 renderer: render.RenderFunction | None = None) -> None:
        ceiling = connection_ceiling()
        if settings.tuning.max_connections > ceiling:
            settings = dataclasses.replace(settings, tuning=dataclasses.replace(
                settings.tuning, max_connections=ceiling))
        self.settings = settings
        self.placement: Placement = placement or LocalPlacement()
        self.renderer = renderer or render.render
        settings.base_path.mkdir(parents=True, exist_ok=True)
        self.ping_check = self._install_script("ping-check", PING_CHECK)
        self.vrrp_check = self._install_script("vrrp-check", keepalived.CHECK_SCRIPT)
        self.vrrp_notify = self._install_script("vrrp-notify", keepalived.NOTIFY_SCRIPT)
        self.paths = render.ConfigPaths(stats_socket=STATS_SOCKET, server_state_file=SERVER_STATE,
                                        ping_command=str(self.ping_check))
        # What this process last applied, by directory: (text, its view, its spec), so
        # that the next change is planned without reading and rendering spec.json again.
        self._applied: dict[Path, tuple[str, LoadBalancerView, LoadBalancerSpec]] = {}
        # retired-stats.json as last parsed, by path: ((inode, mtime, size), readings).
        self._retired_cache: dict[Path, tuple[tuple[int, int, int],
                                              tuple[runtime.WorkerStats, ...]]] = {}
        # By path: the worker whose reading last looked at retired-stats.json. Only a
        # reload writes it (just before its new worker starts): while the same worker
        # answers, it is not looked at again.
        self._retired_seen: dict[Path, str] = {}
        # spec.json as last parsed, by path: ((inode, mtime, size), spec).
        self._spec_cache: dict[Path, tuple[tuple[int, int, int], LoadBalancerSpec]] = {}
        # lb_ids() as last listed, with the base directory's mtime then (ns).
        self._listed: tuple[int, list[str]] | None = None
        # The units of SINGLE load balancers, for readings (paths built once).
        self._units: dict[str, _Unit] = {}

    def _install_script(self, name: str, text: str) -> Path:
        path = self.settings.base_path / name
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".new")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(path)
        return path

    # -- helpers -------------------------------------------------------------
    def files(self, lb_id: str, amphora_id: str | None = None) -> LbFiles:
        """The directory of ``lb_id`` (of its amphora ``amphora_id``, ACTIVE_STANDBY);
        raises :class:`RenderError` for an unsafe id."""
        if not render.ID_RE.match(lb_id):
            raise RenderError(f"load balancer id {lb_id!r} is not a valid identifier")
        if amphora_id is None:
            return LbFiles(self.settings.base_path / lb_id)
        if not render.ID_RE.match(amphora_id):
            raise RenderError(f"amphora id {amphora_id!r} is not a valid identifier")
        return LbFiles(self.settings.base_path / lb_id / amphora_id)

    def process(self, lb_id: str, amphora_id: str | None = None) -> HaproxyProcess:
        """HAProxy process control for ``lb_id`` (or its amphora ``amphora_id``)."""
        s = self.settings
        return HaproxyProcess(self.files(lb_id, amphora_id), s.haproxy_cmd,
                              start_timeout=s.start_timeout, reload_timeout=s.reload_timeout,
                              stop_timeout=s.stop_timeout)

    def keepalived(self, lb_id: str, amphora_id: str) -> KeepalivedProcess:
        """keepalived process control for amphora ``amphora_id`` of ``lb_id``."""
        return KeepalivedProcess(KeepalivedFiles(self.files(lb_id, amphora_id).root),
                                 self.settings.keepalived)

    def _unit(self, lb_id: str, amphora: AmphoraSpec | None = None) -> _Unit:
        amphora_id = amphora.id if amphora is not None else None
        return _Unit(lb_id, amphora, self.files(lb_id, amphora_id),
                     self.process(lb_id, amphora_id))

    def render(self, lb: LoadBalancerSpec) -> str:
        """The configuration of ``lb`` for this host."""
        return self.renderer(lb, self.paths, self.settings.tuning)

    def render_keepalived(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> str:
        """keepalived.conf of ``amphora`` of ``lb`` for this host."""
        files = KeepalivedFiles(self.files(lb.id, amphora.id).root)
        return keepalived.render_view(keepalived.build_view(
            lb, amphora, self.placement.interface(lb.id, amphora.id), self.settings.keepalived,
            files, self.vrrp_check, self.vrrp_notify))

    def lb_ids(self) -> list[str]:
        """Load balancers with a directory on this host that holds a configuration, a spec
        or a pid file, or amphorae that do (a directory left by a first start that failed
        has none).

        Supervision and heartbeats ask every few seconds: the last listing is
        kept while the base directory's mtime stays what it was (a directory
        made or removed changes it) and is over :data:`LISTING_SETTLE` seconds
        old (changes within one timestamp tick are not told apart). Files that
        appear later in a directory listed without them (an apply's) are not
        seen until the next listing: the agent knows what it applied.
        """
        try:
            mtime = os.stat(self.settings.base_path).st_mtime_ns
            listed = self._listed
            if listed is not None and listed[0] == mtime:
                return list(listed[1])
            entries = list(os.scandir(self.settings.base_path))
        except OSError:
            return []
        # Plain os calls: supervision looks at every directory every few seconds.
        ids = sorted(e.name for e in entries
                     if render.ID_RE.match(e.name) and (_holds_files(e.path)
                                                        or self.amphora_ids(e.name)))
        settled = time.time_ns() - mtime > LISTING_SETTLE * 1e9
        self._listed = (mtime, ids) if settled else None
        return list(ids)

    def amphora_ids(self, lb_id: str) -> list[str]:
        """The amphorae of ACTIVE_STANDBY ``lb_id`` with a directory on this host."""
        try:  # the directory's entries, their types without a stat each (every reading)
            entries = list(os.scandir(self.files(lb_id).root))
        except OSError:
            return []
        return sorted(e.name for e in entries
                      if e.is_dir(follow_symlinks=False) and render.ID_RE.match(e.name)
                      and _holds_files(e.path))

    def last_spec(self, lb_id: str, amphora_id: str | None = None) -> LoadBalancerSpec | None:
        """The spec last applied to ``lb_id`` (to its amphora ``amphora_id``), or None.

        Parsed again only when ``spec.json`` changed (inode, mtime, size: it is
        replaced whole by each apply); heartbeats ask for every adopted load
        balancer's every few seconds.
        """
        path = self.files(lb_id, amphora_id).spec
        try:
            st = os.stat(path)
            version = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._spec_cache.get(path)
            if cached is not None and cached[0] == version:
                return cached[1]
            lb = specs.from_json(path.read_bytes())
        except (OSError, ValueError):
            return None
        self._spec_cache[path] = (version, lb)
        return lb

    def vrrp_state(self, lb_id: str, amphora_id: str) -> str | None:
        """What amphora ``amphora_id``'s keepalived last reported (MASTER, BACKUP, FAULT,
        STOP), or None if it is not running."""
        return self.keepalived(lb_id, amphora_id).state()

    def here(self, lb: LoadBalancerSpec) -> tuple[AmphoraSpec, ...]:
        """The amphorae of ``lb`` that run on this host: every one but those the spec
        places on another host (:attr:`AmphoraSpec.host`), e.g. the peer of an
        ACTIVE_STANDBY amphora on another agent."""
        host = self.settings.host
        return tuple(a for a in lb.amphorae if host is None or a.host in (None, host))

    def processes(self, lb_id: str, lb: LoadBalancerSpec | None = None,
                  ) -> dict[str, tuple[int | None, Path]]:
        """Every process ``lb_id`` needs on this host: key -> (PID or None if it is not
        running, its working directory).

        SINGLE: ``{lb_id: HAProxy}``. ACTIVE_STANDBY (``lb`` given and
        ACTIVE_STANDBY, or amphora directories found):
        ``{"<lb_id>/<amphora_id>/haproxy": ..., "<lb_id>/<amphora_id>/keepalived": ...}``
        for the amphorae of ``lb`` on this host and of the disk.
        """
        amphora_ids = set(self.amphora_ids(lb_id))
        if lb is not None and lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
            amphora_ids.update(a.id for a in self.here(lb))
        if not amphora_ids:
            return {lb_id: (self.process(lb_id).pid(), self.files(lb_id).root)}
        out: dict[str, tuple[int | None, Path]] = {}
        for amphora_id in sorted(amphora_ids):
            root = self.files(lb_id, amphora_id).root
            out[f"{lb_id}/{amphora_id}/haproxy"] = (self.process(lb_id, amphora_id).pid(), root)
            out[f"{lb_id}/{amphora_id}/keepalived"] = (
                self.keepalived(lb_id, amphora_id).pid(), root)
        return out

    @staticmethod
    def _write(path: Path, data: str, durable: bool = True) -> None:
        """Replace ``path`` by ``data`` atomically (readers see the old or the new text);
        ``durable``: on disk before the rename (fsync)."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)

    def _commit(self, f: LbFiles, lb: LoadBalancerSpec, text: str,
                view: LoadBalancerView | None) -> None:
        """``text`` (the installed haproxy.cfg, ``view`` rendered) served: keep it as the
        last good one, and ``lb`` as the spec (durable: a restart starts from it; its
        TLS material redacted), and drop TLS files it no longer names."""
        self._write(f.good, text, durable=False)
        self._write(f.spec, specs.to_json(lb.redacted()))
        self._prune_tls_files(f, lb, view)
        if view is not None:
            self._applied[f.root] = (text, view, lb)
        else:
            self._applied.pop(f.root, None)

    def _write_tls_files(self, f: LbFiles, lb: LoadBalancerSpec,
                         view: LoadBalancerView | None) -> bool:
        """Write the TLS files ``lb``'s configuration (``view``, if built) loads (0600 in
        a 0700 directory).

        Returns True if any was new or changed. Raises RenderError if material
        is missing.
        """
        wanted = render.tls_files(lb, view)
        certs = f.root / render.CERTS_DIR
        if not wanted and not certs.exists():
            return False
        certs.mkdir(mode=0o700, exist_ok=True)
        certs.chmod(0o700)
        changed = False
        digests = {f.name: f.sha256 for f in lb.tls_files}
        for name, data in wanted.items():
            path = certs / name
            if not data and name in digests:
                # A redacted spec (a restart from spec.json): the file must be on disk.
                try:
                    ok = hashlib.sha256(path.read_bytes()).hexdigest() == digests[name]
                except OSError:
                    ok = False
                if not ok:
                    raise RenderError(f"TLS file {name} is not on this host and the spec "
                                      "does not carry it (apply the full spec again)")
                continue
            try:
                if path.read_bytes() == data:
                    continue
            except OSError:
                pass
            tmp = certs / (name + ".tmp")
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
            changed = True
        return changed

    def _prune_tls_files(self, f: LbFiles, lb: LoadBalancerSpec,
                         view: LoadBalancerView | None = None) -> None:
        """Remove TLS files that ``lb``'s configuration (``view``, if built) no longer
        names."""
        certs = f.root / render.CERTS_DIR
        if not certs.is_dir():
            return
        try:
            keep = set(render.tls_files(lb, view))
        except RenderError:
            return
        for path in certs.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _result(self, u: _Unit, action: str, procs: runtime.ProcessList | None,
                commands: int = 0) -> ApplyResult:
        return ApplyResult(lb_id=u.lb_id, action=action,
                           master_pid=procs.master if procs else None,
                           worker_pids=procs.workers if procs else (), commands=commands,
                           amphora_id=u.amphora_id)

    # -- apply ---------------------------------------------------------------
    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Make ``lb``'s amphorae serve exactly ``lb`` (see the module docstring).

        Raises DataplaneError subclasses (ACTIVE_STANDBY: the reason names the
        amphora that failed).
        """
        self._let_go(lb.id)
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
            return self._apply_pair(lb)
        return self._apply_haproxy(lb, self._unit(lb.id))

    def _let_go(self, lb_id: str) -> None:
        """Close the stats connection :meth:`stats` keeps for ``lb_id``, if any."""
        unit = self._units.get(lb_id)
        if unit is not None:
            unit.proc.stats.close()

    def close_connections(self) -> None:
        """Close every stats connection :meth:`stats` keeps (HAProxy is left running)."""
        for lb_id in list(self._units):
            self._let_go(lb_id)

    def _apply_haproxy(self, lb: LoadBalancerSpec, u: _Unit) -> ApplyResult:
        """The HAProxy transaction of the module docstring, in ``u``'s directory."""
        f, proc = u.files, u.proc
        view = None
        if self.renderer is render.render:
            view = render.build_view(lb, self.paths, self.settings.tuning)
        f.root.mkdir(parents=True, exist_ok=True)
        tls_changed = self._write_tls_files(f, lb, view)
        installed = _read(f.cfg)
        running = proc.alive()
        if running and view is not None and not tls_changed and not f.dirty.exists():
            done = self._apply_runtime(lb, u, installed, view)
            if done is not None:
                return done
        text = render.render_view(view) if view is not None else self.render(lb)
        if running and installed == text and not f.dirty.exists() and not tls_changed:
            if not f.spec.exists():
                self._write(f.spec, specs.to_json(lb.redacted()))
            return self._result(u, "unchanged", proc.processes())

        # The file is derived (a restart renders the spec again): no fsync for it.
        self._write(f.new, text, durable=False)
        if not running:  # starting parses the configuration: no separate check
            return self._start(lb, u, text, view)
        self._check(f, f.new)
        previous = self._previous(u)
        f.new.replace(f.cfg)
        self.placement.prepare(lb, u.amphora)
        self._retire_counters(f, proc)
        self._save_server_state(f, proc, lb)
        try:
            procs = proc.reload()
        except ProcessError:
            shutil.copyfile(f.cfg, f.failed)
            if f.good.exists():
                shutil.copyfile(f.good, f.new)
                f.new.replace(f.cfg)
            raise
        f.dirty.unlink(missing_ok=True)
        self._commit(f, lb, text, view)
        if previous is None or _vips(previous) != _vips(lb):
            self.placement.announce(lb, u.amphora)
        return self._result(u, "reloaded", procs)

    def _apply_runtime(self, lb: LoadBalancerSpec, u: _Unit, installed: str | None,
                       view: LoadBalancerView) -> ApplyResult | None:
        """A change of servers only, through the runtime API of running ``u``: the
        commands first (a new member takes traffic without waiting for any file:
        issue 12), then haproxy.cfg, its last good copy and spec.json, all before
        returning, so that a reload or a restart from then on starts with it.

        No ``haproxy -c``: the server lines are the words ``add server`` took.
        None if the change is not for the runtime API alone (a reload is needed,
        or nothing changed), or if HAProxy refused a command: then ``dirty`` is
        marked (it may hold part of the change) and the caller reloads from the
        file, checked first. A file that cannot be written after the commands
        raises (the load balancer goes to ERROR with the reason); the next apply
        plans from the configuration installed, older than what runs, so it
        sends those commands again (refused: it reloads) or writes them to the file.
        """
        plan = self._plan(lb, u, installed, view)
        if not plan:
            return None
        f, proc = u.files, u.proc
        try:
            self._run_plan(proc, plan)
        except RuntimeApiError as e:
            LOG.warning("%s: runtime API change failed (%s); reloading", u.label(), e.reason)
            f.dirty.touch()
            return None
        text = render.render_view(view)
        self._write(f.new, text, durable=False)
        f.new.replace(f.cfg)
        self._commit(f, lb, text, view)
        return self._result(u, "runtime", proc.processes(),
                            len(plan.commands) + len(plan.deletions))

    def _start(self, lb: LoadBalancerSpec, u: _Unit, text: str,
               view: LoadBalancerView | None) -> ApplyResult:
        f = u.files
        self.placement.prepare(lb, u.amphora)
        f.new.replace(f.cfg)
        try:
            procs = u.proc.start(self.placement.preexec(u.lb_id, u.amphora_id))
        except ProcessError:
            shutil.copyfile(f.cfg, f.failed)
            if f.good.exists():
                shutil.copyfile(f.good, f.new)
                f.new.replace(f.cfg)
            else:  # nothing ever served: leave nothing for supervision to restart
                f.cfg.unlink()
            raise
        f.dirty.unlink(missing_ok=True)
        self._commit(f, lb, text, view)
        self.placement.announce(lb, u.amphora)
        return self._result(u, "started", procs)

    def _check(self, f: LbFiles, path: Path) -> None:
        """``haproxy -c`` on ``path``; refused: kept as ``haproxy.cfg.failed``, raise."""
        try:
            check_config(self.settings.haproxy_cmd, path, self.settings.check_timeout)
        except DataplaneError:
            if path == f.new:
                f.new.replace(f.failed)
            else:
                shutil.copyfile(path, f.failed)
            raise

    def _previous(self, u: _Unit) -> LoadBalancerSpec | None:
        """The spec last applied (in memory since this process applied it, else spec.json)."""
        applied = self._applied.get(u.files.root)
        return applied[2] if applied is not None else self.last_spec(u.lb_id, u.amphora_id)

    def _plan(self, lb: LoadBalancerSpec, u: _Unit, installed: str | None,
              new_view: LoadBalancerView | None) -> changes.RuntimePlan | None:
        """The runtime commands from the installed configuration to ``new_view``, or None.

        The installed configuration's view is the one this process applied
        (kept with its text), else rendered again from spec.json; either only
        if it gives exactly the installed text.
        """
        if installed is None or new_view is None:
            return None
        applied = self._applied.get(u.files.root)
        if applied is not None and applied[0] == installed:
            return changes.plan(applied[1], new_view)
        old = self.last_spec(u.lb_id, u.amphora_id)
        if old is None:
            return None
        try:
            old_view = render.build_view(old, self.paths, self.settings.tuning)
            if render.render_view(old_view) != installed:
                return None
        except RenderError:
            return None
        return changes.plan(old_view, new_view)

    def _run_plan(self, proc: HaproxyProcess, plan: changes.RuntimePlan) -> None:
        for command in plan.commands:
            proc.stats.execute(command)
        for ref in plan.deletions:
            deadline = time.monotonic() + self.settings.drain_timeout
            while True:
                try:
                    proc.stats.execute(f"del server {ref}")
                    break
                except RuntimeApiError as e:
                    if time.monotonic() >= deadline:
                        # Still busy: it stays in maintenance (no new traffic) and
                        # disappears at the next reload, the file no longer has it.
                        LOG.info("server %s still has connections; left in maintenance (%s)",
                                 ref, e.reason)
                        break
                    time.sleep(0.05)

    # -- ACTIVE_STANDBY -----------------------------------------------------------
    def _apply_pair(self, lb: LoadBalancerSpec) -> ApplyResult:
        lb_dir = self.files(lb.id)
        lb_dir.root.mkdir(parents=True, exist_ok=True)
        here = self.here(lb)
        wanted = {a.id for a in here}
        for amphora_id in self.amphora_ids(lb.id):
            if amphora_id not in wanted:
                self._retire(lb, amphora_id)
        # HAProxy, backups first: the MASTER, which serves, changes last, and keeps
        # serving what it served if a change fails on the way.
        order = sorted(here, key=lambda a: (
            self.vrrp_state(lb.id, a.id) == "MASTER", a.role == c.AMPHORA_ROLE_MASTER))
        results = {}
        for amphora in order:
            try:
                results[amphora.id] = self._apply_haproxy(lb, self._unit(lb.id, amphora))
            except DataplaneError as e:
                raise type(e)(f"amphora {amphora.id}: {e.reason}") from e
        # keepalived once HAProxy serves, the amphora built for MASTER first: both start
        # as BACKUP (nopreempt), and the first to start takes the VIP.
        for amphora in sorted(here, key=lambda a: a.role != c.AMPHORA_ROLE_MASTER):
            try:
                if self._apply_keepalived(lb, amphora, results[amphora.id].action):
                    results[amphora.id] = dataclasses.replace(results[amphora.id],
                                                              action="started")
            except DataplaneError as e:
                raise type(e)(f"amphora {amphora.id}: {e.reason}") from e
        if len(here) == len(lb.amphorae):  # else the peer's host is asked, by the controller
            self._await_master(lb)
        self._write(lb_dir.spec, specs.to_json(lb.redacted()))
        return ApplyResult.of_amphorae(lb.id, [results[a.id] for a in order])

    def _apply_keepalived(self, lb: LoadBalancerSpec, amphora: AmphoraSpec,
                          haproxy_action: str) -> bool:
        """Start ``amphora``'s keepalived, or reload it if keepalived.conf changed.

        Returns True if it was started. ``haproxy_action``: what its HAProxy
        just did (``started`` means its plumbing was just made).
        """
        ka = self.keepalived(lb.id, amphora.id)
        text = self.render_keepalived(lb, amphora)
        conf = ka.files.conf
        running = ka.pid() is not None
        if running and _read(conf) == text:
            return False
        if haproxy_action != "started":
            self.placement.prepare(lb, amphora)
        new = conf.with_name(conf.name + ".new")
        self._write(new, text)
        keepalived.check_config(self.settings.keepalived.keepalived_cmd, new,
                                self.placement.preexec(lb.id, amphora.id),
                                self.settings.check_timeout)
        new.replace(conf)
        if running:
            ka.reload()
            LOG.info("amphora %s: keepalived.conf changed; keepalived reloaded", amphora.id)
            return False
        pid = ka.start(self.placement.preexec(lb.id, amphora.id))
        LOG.info("amphora %s: keepalived %d started (%s)", amphora.id, pid,
                 ka.state() or "no state yet")
        return True

    def _await_master(self, lb: LoadBalancerSpec) -> None:
        """Wait until one amphora is MASTER (:func:`keepalived.await_master`)."""
        assert lb.vrrp is not None
        keepalived.await_master(lambda: {a.id: self.vrrp_state(lb.id, a.id)
                                         for a in lb.amphorae}, lb.vrrp.advert_int)

    def _retire(self, lb: LoadBalancerSpec, amphora_id: str) -> None:
        """Remove amphora ``amphora_id``, no longer one of ``lb``'s, handing its VIP over.

        A MASTER keeps serving clients that still send to its MAC (the VIP on
        its ``lo``, :meth:`Placement.hold_vip`) while its keepalived stops
        (priority 0: a running peer takes over after its skew time and sends
        gratuitous ARPs), until the peer is MASTER and ``handover_grace`` has
        passed; the next packets of requests in flight here that reach the
        peer once it has the VIP are sent back here meanwhile
        (:meth:`Placement.forward_strays`), so none of them is reset; then its
        HAProxy finishes what it serves (up to ``drain_timeout``), the peer
        stops forwarding and its namespace goes.
        """
        ka = self.keepalived(lb.id, amphora_id)
        old = self.last_spec(lb.id, amphora_id)
        old_amphora = old.amphora(amphora_id) if old is not None else None
        peers = [a for a in lb.amphorae
                 if self.keepalived(lb.id, a.id).state() in ("MASTER", "BACKUP")]
        handing_over = ka.state() == "MASTER" and bool(peers)
        forwarding: list[AmphoraSpec] = []
        if handing_over and old is not None and old_amphora is not None:
            try:
                self.placement.hold_vip(old, old_amphora)
            except DataplaneError as e:
                LOG.warning("amphora %s: cannot hold the VIP during the handover (%s)",
                            amphora_id, e.reason)
            for peer in peers:  # requests in flight here reach the peer next: sent back
                try:
                    self.placement.forward_strays(lb, peer, old_amphora.vrrp_ip)
                    forwarding.append(peer)
                except DataplaneError as e:
                    LOG.warning("amphora %s: requests in flight on %s may be reset when "
                                "the VIP moves (%s)", peer.id, amphora_id, e.reason)
        ka.stop()
        if handing_over:
            assert lb.vrrp is not None
            deadline = time.monotonic() + 4 * lb.vrrp.advert_int + 2.0
            while time.monotonic() < deadline and not any(
                    self.vrrp_state(lb.id, a.id) == "MASTER" for a in peers):
                time.sleep(0.01)
            time.sleep(self.settings.handover_grace)
        self.process(lb.id, amphora_id).stop(drain=self.settings.drain_timeout)
        for peer in forwarding:
            try:
                self.placement.stop_forwarding(lb, peer)
            except DataplaneError as e:
                LOG.warning("amphora %s: the handover's forwarding stays (%s)", peer.id,
                            e.reason)
        self.placement.teardown(lb.id, amphora_id)
        shutil.rmtree(self.files(lb.id, amphora_id).root, ignore_errors=True)
        LOG.info("amphora %s of load balancer %s retired%s", amphora_id, lb.id,
                 " (VIP handed over)" if handing_over else "")

    # -- delete / failover ----------------------------------------------------------
    def delete(self, lb_id: str) -> bool:
        """Stop ``lb_id``'s processes and remove its directory and plumbing; False if there
        was nothing."""
        f = self.files(lb_id)
        existed = f.root.exists()
        self._let_go(lb_id)
        for amphora_id in self.amphora_ids(lb_id):
            self.keepalived(lb_id, amphora_id).stop()
            self.process(lb_id, amphora_id).stop()
            self.placement.teardown(lb_id, amphora_id)
        if existed:
            self.process(lb_id).stop()
        self.placement.teardown(lb_id)
        shutil.rmtree(f.root, ignore_errors=True)
        for cache in (self._retired_cache, self._retired_seen, self._spec_cache):
            for path in [p for p in list(cache) if p.is_relative_to(f.root)]:
                del cache[path]
        self._units.pop(lb_id, None)
        for root in [r for r in list(self._applied) if r.is_relative_to(f.root)]:
            del self._applied[root]
        return existed

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Rebuild SINGLE ``lb`` from scratch: stop, remove, plumb and start again.

        ACTIVE_STANDBY amphorae are rebuilt by replacing them: apply a spec
        in which a new amphora takes the place of the one to rebuild (the
        old one is retired first, handing the VIP over). Raises
        :class:`ProcessError` for an ACTIVE_STANDBY ``lb``.
        """
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
            raise ProcessError("ACTIVE_STANDBY amphorae are rebuilt by replacing them: apply "
                               "a spec with a new amphora in place of the old one")
        self.delete(lb.id)
        return self.apply(lb)

    # -- server states across reloads -------------------------------------------
    def _save_server_state(self, f: LbFiles, proc: HaproxyProcess,
                           lb: LoadBalancerSpec) -> None:
        """Write the states the new worker loads (``load-server-state-from-file``):
        a member that checks found DOWN stays DOWN through the reload instead of
        taking traffic again until ``fall`` checks fail. Only servers checked in
        ``lb``'s configuration carry over (see :func:`runtime.server_state_to_keep`);
        if the old worker does not answer, the new one starts from the
        configuration alone.
        """
        try:
            view = render.build_view(lb, self.paths, self.settings.tuning)
            checked = {(be.name, server.name) for be in view.backends
                       for server in be.servers if server.check}
            text = runtime.server_state_to_keep(proc.stats.raw("show servers state"), checked)
        except (RenderError, RuntimeApiError) as e:
            LOG.info("load balancer %s: server states before reload not read (%s)",
                     f.root.name, e.reason)
            text = runtime.EMPTY_SERVER_STATE
        self._write(f.server_state, text)

    # -- counters across reloads ------------------------------------------------
    def _retire_counters(self, f: LbFiles, proc: HaproxyProcess) -> None:
        """Keep the current worker's counters before a reload retires it (best effort)."""
        try:
            worker, rows = proc.stats.show_info_stat()
        except RuntimeApiError as e:
            LOG.info("load balancer %s: counters before reload not read (%s)",
                     f.root.name, e.reason)
            return
        kept = [w for w in self._retired(f) if w.worker != worker][-(RETIRED_KEEP - 1):]
        kept.append(runtime.WorkerStats(worker=worker, live=False, rows=runtime.counter_rows(rows)))
        self._write(f.retired, json.dumps([dataclasses.asdict(w) for w in kept]))

    def _retired(self, f: LbFiles, worker: str | None = None) -> list[runtime.WorkerStats]:
        """The readings in ``retired-stats.json``, parsed again only when the file changed
        (every health poll asks for them; a reload writes them). ``worker``: the
        identity of the worker that answered the reading they go with; if the last
        call named the same one, the file is not looked at (no reload since)."""
        if worker is not None and self._retired_seen.get(f.retired) == worker:
            cached = self._retired_cache.get(f.retired)
            return list(cached[1]) if cached is not None else []
        try:
            st = os.stat(f.retired)
        except FileNotFoundError:
            self._retired_cache.pop(f.retired, None)
            self._saw_retired(f, worker)
            return []
        except OSError as e:
            LOG.warning("ignoring unreadable %s: %s", f.retired, e)
            return []
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._retired_cache.get(f.retired)
        if cached is not None and cached[0] == version:
            self._saw_retired(f, worker)
            return list(cached[1])
        try:
            data = json.loads(f.retired.read_text())
            workers = tuple(runtime.WorkerStats(
                worker=w["worker"], live=False,
                rows=tuple(runtime.StatRow(**r) for r in w["rows"])) for w in data)
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, KeyError) as e:
            LOG.warning("ignoring unreadable %s: %s", f.retired, e)
            return []
        self._retired_cache[f.retired] = (version, workers)
        self._saw_retired(f, worker)
        return list(workers)

    def _saw_retired(self, f: LbFiles, worker: str | None) -> None:
        if worker is not None:
            self._retired_seen[f.retired] = worker

    # -- observe -----------------------------------------------------------------
    def stats(self, lb_id: str, master: int | None = None, reuse: bool = False,
              keep: bool = False) -> runtime.LoadBalancerStats:
        """Counters and states of ``lb_id``'s HAProxy (ACTIVE_STANDBY: of both amphorae).

        ``master``: the PID of ``lb_id``'s own master (a SINGLE load balancer)
        when the caller knows it runs (watched through a pidfd): then neither
        the amphora directories nor the pid file are looked at. ``reuse``: rows
        that say nothing new may be those of the last reading asked with
        ``reuse`` (see :meth:`runtime.StatsClient.show_info_stat`; ``lastchg``,
        ``downtime`` and ``rate`` are then as they were read then). ``keep``: a
        SINGLE load balancer's stats socket is asked over a connection kept open
        for the next call with ``keep`` (see
        :meth:`runtime.StatsClient.show_info_stat`), while its master has one
        worker; it is closed by :meth:`apply`, :meth:`delete` and
        :meth:`close_connections`, before HAProxy reloads or stops.

        ``running=False`` (no rows) if no HAProxy runs for it; ``error`` set
        (no rows) if it runs but a socket did not answer. Otherwise ``rows``
        and ``worker`` come from the current worker (one connection), and
        ``others`` holds the frontend and server counters of old workers
        still finishing connections and of workers retired by recent reloads.
        ACTIVE_STANDBY: see :class:`~lbaas.dataplane.runtime.LoadBalancerStats`;
        a socket of either amphora that does not answer is the ``error`` of
        the whole (no counter moves on half a reading).
        """
        amphora_ids = self.amphora_ids(lb_id) if master is None else []
        if not amphora_ids:
            unit = self._units.get(lb_id)
            if unit is None:
                unit = self._units[lb_id] = self._unit(lb_id)
            return self._haproxy_stats(unit, master, reuse, keep)
        lb = self.last_spec(lb_id)
        readings = []
        for amphora_id in amphora_ids:
            spec = lb.amphora(amphora_id) if lb is not None else None
            if spec is None:  # not applied in full yet: its own last spec says what it is
                own = self.last_spec(lb_id, amphora_id)
                lb_of, spec = own, own.amphora(amphora_id) if own is not None else None
            else:
                lb_of = lb
            st = self._haproxy_stats(_Unit(lb_id, spec, self.files(lb_id, amphora_id),
                                           self.process(lb_id, amphora_id)), reuse=reuse)
            state = self.vrrp_state(lb_id, amphora_id)
            broken = self.placement.broken(lb_of, spec) if lb_of is not None and \
                spec is not None else None
            health = runtime.AmphoraHealth(
                id=amphora_id, running=st.running and state is not None and broken is None,
                vrrp_state=state, error=broken)
            readings.append(dataclasses.replace(
                st, amphorae=(health,),
                error=f"amphora {amphora_id}: {st.error}" if st.error is not None else None))
        return runtime.combine(lb_id, readings)

    def _haproxy_stats(self, u: _Unit, master: int | None = None, reuse: bool = False,
                       keep: bool = False) -> runtime.LoadBalancerStats:
        proc = u.proc
        master = master or proc.recorded_pid()
        one_worker = master is not None and not _may_have_old_workers(master)
        if keep and not one_worker:
            proc.stats.close()  # it may hold an old worker (reloaded meanwhile): let it go
        try:
            # An answer means it runs (only this load balancer's HAProxy serves these
            # sockets): the process checks are for when it does not answer.
            old_workers = () if one_worker else proc.master.show_proc().old_workers
            worker, rows = proc.stats.show_info_stat(reuse, keep=keep and one_worker)
        except RuntimeApiError as e:
            if proc.pid() is None:
                # The master rewrites its pid file in place on every reload: look twice
                # before reporting a dead process.
                time.sleep(DEAD_RECHECK)
                if proc.pid() is None:
                    return runtime.LoadBalancerStats(lb_id=u.lb_id, running=False)
            return runtime.LoadBalancerStats(lb_id=u.lb_id, running=True, error=e.reason)
        others: list[runtime.WorkerStats] = []
        for pid in old_workers:
            try:
                old, old_rows = proc.master.worker_info_stat(pid)
            except RuntimeApiError:
                continue  # it exited in between: its last reading is among the retired
            others.append(runtime.WorkerStats(worker=old, live=True,
                                              rows=runtime.counter_rows(old_rows)))
        others += self._retired(u.files, worker)
        return runtime.LoadBalancerStats(lb_id=u.lb_id, running=True, rows=rows, worker=worker,
                                         others=tuple(others))

    def _serving(self, lb_id: str) -> HaproxyProcess:
        """The HAProxy that serves ``lb_id``'s VIP: its own, or its MASTER amphora's (else
        any amphora's that runs)."""
        amphora_ids = self.amphora_ids(lb_id)
        if not amphora_ids:
            return self.process(lb_id)
        ranked = sorted(amphora_ids, key=lambda a: (self.vrrp_state(lb_id, a) != "MASTER",
                                                    self.process(lb_id, a).pid() is None))
        return self.process(lb_id, ranked[0])

    def health(self, lb_id: str) -> runtime.LoadBalancerHealth:
        """Liveness of ``lb_id``'s serving HAProxy and each member's status in it."""
        proc = self._serving(lb_id)
        pid = proc.pid()
        if pid is None:
            return runtime.LoadBalancerHealth(lb_id=lb_id, alive=False)
        procs = proc.processes()
        stats = self.stats(lb_id)
        health = runtime.health_from_stats(stats, pid, procs.workers if procs else ())
        return dataclasses.replace(health, alive=True)

    def pids(self, lb_id: str, amphora_id: str | None = None,
             ) -> tuple[int | None, tuple[int, ...]]:
        """(master PID, current worker PIDs) of ``lb_id``'s HAProxy (or its amphora's), for
        tests and tools."""
        proc = self.process(lb_id, amphora_id)
        pid = proc.pid()
        procs = proc.processes() if pid else None
        return pid, procs.workers if procs else ()


def _may_have_old_workers(master: int) -> bool:
    """False if the master has a single child (its current worker): no need to ask it.

    Reading ``/proc/<pid>/task/<pid>/children`` costs far less than a master
    CLI round trip, and old workers exist only for a while after a reload.
    """
    try:  # plain os calls: a health poll reads it for every load balancer every few seconds
        fd = os.open(f"/proc/{master}/task/{master}/children", os.O_RDONLY)
        try:
            return len(os.read(fd, 4096).split()) > 1
        finally:
            os.close(fd)
    except OSError:
        return True  # unknown here: ask the master


def _holds_files(directory: Path | str) -> bool:
    """True if ``directory`` holds an HAProxy configuration, a spec or a pid file."""
    return any(os.path.exists(os.path.join(directory, name))
               for name in ("haproxy.cfg", "spec.json", "haproxy.pid"))


def _read(path: Path) -> str | None:
    """The text of ``path``, or None if it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _vips(lb: LoadBalancerSpec) -> tuple[str, ...]:
    return (lb.vip.address, *(v.address for v in lb.additional_vips))

