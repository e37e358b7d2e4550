"""Amphorae on this host: one HAProxy per load balancer, changed as transactions.

:class:`Amphorae` does what an agent does for the load balancers it hosts;
it keeps no state in memory, everything is in ``<base_path>/<lb_id>/`` and
in the running processes, so a restarted agent adopts what runs. It is not
thread-safe for one load balancer: the agent serialises calls per load
balancer (and runs different ones in parallel).

apply(spec) is a transaction (style item 7; Octavia's amphora agent
``api_server/loadbalancer.py`` and dataplaneapi's reload agent)::

    render -> unchanged and running?  -> nothing (no reload)
           -> write haproxy.cfg.new -> haproxy -c   (refused: .failed kept, raise;
                                                      the old process keeps serving;
                                                      skipped to start again exactly
                                                      haproxy.cfg.good)
           -> not running?  placement.prepare -> rename -> start -> announce
           -> running:      rename (the file is the truth from here on)
                            -> members only changed?  runtime API (no reload)
                            -> otherwise, or if the runtime API refuses: reload
                               (failed: haproxy.cfg.failed kept, last-known-good
                               restored as haproxy.cfg, raise)
           -> haproxy.cfg.good and spec.json updated

A dead HAProxy is started again the same way: the agent's supervision calls
apply() with the last applied spec, so a deleted or damaged ``haproxy.cfg``
is rendered again, checked and started (never started as found on disk).

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
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from lbaas.dataplane import changes, render, runtime
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
from lbaas.dataplane.placement import LocalPlacement, Placement
from lbaas.dataplane.spec import LoadBalancerSpec

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


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`Amphorae.apply` did.

    ``action``: ``unchanged`` (nothing to do), ``started``, ``runtime``
    (member changes through the runtime API, same worker) or ``reloaded``.
    ``commands`` counts runtime API commands sent.
    """

    lb_id: str
    action: str
    master_pid: int | None
    worker_pids: tuple[int, ...] = ()
    commands: int = 0


class Amphorae:
    """The HAProxy processes of every load balancer under ``settings.base_path``."""

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
        self.ping_check = settings.base_path / "ping-check"
        if not self.ping_check.exists() or self.ping_check.read_text() != PING_CHECK:
            tmp = self.ping_check.with_suffix(".new")
            tmp.write_text(PING_CHECK)
            tmp.chmod(0o755)
            tmp.replace(self.ping_check)
        self.paths = render.ConfigPaths(stats_socket=STATS_SOCKET, server_state_file=SERVER_STATE,
                                        ping_command=str(self.ping_check))

    # -- helpers -------------------------------------------------------------
    def files(self, lb_id: str) -> LbFiles:
        """The directory of ``lb_id``; raises :class:`RenderError` for an unsafe id."""
        if not render.ID_RE.match(lb_id):
            raise RenderError(f"load balancer id {lb_id!r} is not a valid identifier")
        return LbFiles(self.settings.base_path / lb_id)

    def process(self, lb_id: str) -> HaproxyProcess:
        """Process control for ``lb_id``."""
        s = self.settings
        return HaproxyProcess(self.files(lb_id), s.haproxy_cmd, start_timeout=s.start_timeout,
                              reload_timeout=s.reload_timeout, stop_timeout=s.stop_timeout)

    def render(self, lb: LoadBalancerSpec) -> str:
        """The configuration of ``lb`` for this host."""
        return self.renderer(lb, self.paths, self.settings.tuning)

    def lb_ids(self) -> list[str]:
        """Load balancers with a directory on this host that holds a configuration, a spec
        or a pid file (a directory left by a first start that failed has none)."""
        if not self.settings.base_path.is_dir():
            return []
        return sorted(p.name for p in self.settings.base_path.iterdir()
                      if render.ID_RE.match(p.name) and any(
                          (p / name).exists() for name in ("haproxy.cfg", "spec.json",
                                                           "haproxy.pid")))

    def last_spec(self, lb_id: str) -> LoadBalancerSpec | None:
        """The spec last applied to ``lb_id``, or None."""
        try:
            return specs.from_json(self.files(lb_id).spec.read_bytes())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write(path: Path, data: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def _commit(self, f: LbFiles, lb: LoadBalancerSpec) -> None:
        shutil.copyfile(f.cfg, f.good)
        self._write(f.spec, specs.to_json(lb))

    def _result(self, lb_id: str, action: str, procs: runtime.ProcessList | None,
                commands: int = 0) -> ApplyResult:
        return ApplyResult(lb_id=lb_id, action=action, master_pid=procs.master if procs else None,
                           worker_pids=procs.workers if procs else (), commands=commands)

    # -- apply ---------------------------------------------------------------
    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Make ``lb``'s HAProxy serve exactly ``lb``. Raises DataplaneError subclasses."""
        f = self.files(lb.id)
        text = self.render(lb)
        f.root.mkdir(parents=True, exist_ok=True)
        proc = self.process(lb.id)
        installed = _read(f.cfg)
        running = proc.alive()
        if running and installed == text and not f.dirty.exists():
            if not f.spec.exists():
                self._write(f.spec, specs.to_json(lb))
            return self._result(lb.id, "unchanged", proc.processes())

        self._write(f.new, text)
        # A restart of exactly the configuration that last served skips the check:
        # HAProxy accepted that text already, and starting parses it again anyway.
        if running or _read(f.good) != text:
            try:
                check_config(self.settings.haproxy_cmd, f.new, self.settings.check_timeout)
            except DataplaneError:
                f.new.replace(f.failed)
                raise
        if not running:
            return self._start(lb, f, proc)

        plan = None if f.dirty.exists() else self._plan(lb, installed)
        previous = self.last_spec(lb.id)
        f.new.replace(f.cfg)
        if plan is not None:
            try:
                self._run_plan(proc, plan)
                self._commit(f, lb)
                return self._result(lb.id, "runtime", proc.processes(),
                                    len(plan.commands) + len(plan.deletions))
            except RuntimeApiError as e:
                LOG.warning("load balancer %s: runtime API change failed (%s); reloading",
                            lb.id, e.reason)
                f.dirty.touch()
        self.placement.prepare(lb)
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
        self._commit(f, lb)
        if previous is None or _vips(previous) != _vips(lb):
            self.placement.announce(lb)
        return self._result(lb.id, "reloaded", procs)

    def _start(self, lb: LoadBalancerSpec, f: LbFiles, proc: HaproxyProcess) -> ApplyResult:
        self.placement.prepare(lb)
        f.new.replace(f.cfg)
        try:
            procs = proc.start(self.placement.preexec(lb.id))
        except ProcessError:
            shutil.copyfile(f.cfg, f.failed)
            if f.good.exists():
                shutil.copyfile(f.good, f.new)
                f.new.replace(f.cfg)
            else:  # nothing ever served: leave nothing for supervision to restart
                f.cfg.unlink()
            raise
        f.dirty.unlink(missing_ok=True)
        self._commit(f, lb)
        self.placement.announce(lb)
        return self._result(lb.id, "started", procs)

    def _plan(self, lb: LoadBalancerSpec, installed: str | None) -> changes.RuntimePlan | None:
        old = self.last_spec(lb.id)
        if old is None or installed is None:
            return None
        try:
            old_view = render.build_view(old, self.paths, self.settings.tuning)
            if self.renderer is not render.render or render.render_view(old_view) != installed:
                return None
            new_view = render.build_view(lb, self.paths, self.settings.tuning)
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

    # -- delete / failover ----------------------------------------------------------
    def delete(self, lb_id: str) -> bool:
        """Stop ``lb_id``'s HAProxy and remove its directory; False if there was nothing."""
        f = self.files(lb_id)
        existed = f.root.exists()
        if existed:
            self.process(lb_id).stop()
        self.placement.teardown(lb_id)
        shutil.rmtree(f.root, ignore_errors=True)
        return existed

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Rebuild ``lb`` from scratch: stop, remove, plumb and start again."""
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
        kept.append(runtime.WorkerStats(worker=worker, live=False, rows=_counter_rows(rows)))
        self._write(f.retired, json.dumps([dataclasses.asdict(w) for w in kept]))

    @staticmethod
    def _retired(f: LbFiles) -> list[runtime.WorkerStats]:
        try:
            data = json.loads(f.retired.read_text())
            return [runtime.WorkerStats(worker=w["worker"], live=False,
                                        rows=tuple(runtime.StatRow(**r) for r in w["rows"]))
                    for w in data]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, KeyError) as e:
            LOG.warning("ignoring unreadable %s: %s", f.retired, e)
            return []

    # -- observe -----------------------------------------------------------------
    def stats(self, lb_id: str) -> runtime.LoadBalancerStats:
        """Counters and states of ``lb_id``'s HAProxy.

        ``running=False`` (no rows) if no HAProxy runs for it; ``error`` set
        (no rows) if it runs but a socket did not answer. Otherwise ``rows``
        and ``worker`` come from the current worker (one connection), and
        ``others`` holds the frontend and server counters of old workers
        still finishing connections and of workers retired by recent reloads.
        """
        proc = self.process(lb_id)
        master = proc.pid()
        if master is None:
            # The master rewrites its pid file in place on every reload: look twice
            # before reporting a dead process.
            time.sleep(DEAD_RECHECK)
            master = proc.pid()
            if master is None:
                return runtime.LoadBalancerStats(lb_id=lb_id, running=False)
        try:
            old_workers = proc.master.show_proc().old_workers if _may_have_old_workers(master) \
                else ()
            worker, rows = proc.stats.show_info_stat()
        except RuntimeApiError as e:
            return runtime.LoadBalancerStats(lb_id=lb_id, running=True, error=e.reason)
        others: list[runtime.WorkerStats] = []
        for pid in old_workers:
            try:
                old, old_rows = proc.master.worker_info_stat(pid)
            except RuntimeApiError:
                continue  # it exited in between: its last reading is among the retired
            others.append(runtime.WorkerStats(worker=old, live=True,
                                              rows=_counter_rows(old_rows)))
        others += self._retired(self.files(lb_id))
        return runtime.LoadBalancerStats(lb_id=lb_id, running=True, rows=rows, worker=worker,
                                         others=tuple(others))

    def health(self, lb_id: str) -> runtime.LoadBalancerHealth:
        """Liveness of ``lb_id``'s HAProxy and each member's status in it."""
        proc = self.process(lb_id)
        pid = proc.pid()
        if pid is None:
            return runtime.LoadBalancerHealth(lb_id=lb_id, alive=False)
        procs = proc.processes()
        stats = self.stats(lb_id)
        health = runtime.health_from_stats(stats, pid, procs.workers if procs else ())
        return dataclasses.replace(health, alive=True)

    def pids(self, lb_id: str) -> tuple[int | None, tuple[int, ...]]:
        """(master PID, current worker PIDs) of ``lb_id``, for tests and tools."""
        proc = self.process(lb_id)
        pid = proc.pid()
        procs = proc.processes() if pid else None
        return pid, procs.workers if procs else ()


def _may_have_old_workers(master: int) -> bool:
    """False if the master has a single child (its current worker): no need to ask it.

    Reading ``/proc/<pid>/task/<pid>/children`` costs far less than a master
    CLI round trip, and old workers exist only for a while after a reload.
    """
    try:
        return len(Path(f"/proc/{master}/task/{master}/children").read_text().split()) > 1
    except OSError:
        return True  # unknown here: ask the master


def _read(path: Path) -> str | None:
    """The text of ``path``, or None if it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _counter_rows(rows: tuple[runtime.StatRow, ...]) -> tuple[runtime.StatRow, ...]:
    return tuple(r for r in rows if r.type in runtime.COUNTER_ROW_TYPES)


def _vips(lb: LoadBalancerSpec) -> tuple[str, ...]:
    return (lb.vip.address, *(v.address for v in lb.additional_vips))

