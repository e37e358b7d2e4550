"""Traffic counters: HAProxy's per-worker counters -> totals that survive reloads.

HAProxy keeps its counters in the worker process, so they start at zero in
every new worker: after each reload (a new worker takes over, the old one
finishes its connections and exits) and after each restart. neutron-lbaas
reported the raw values and lost everything at each restart; Octavia's
amphora sends deltas against a file of last values. Here the health manager
keeps, per listener and per member, the cumulative totals **and** the last
raw reading of each worker it has seen (in the database, so a restarted
control plane neither loses nor double-counts), and adds the growth:

- a worker seen before adds ``reading - last`` (field by field; a counter
  never goes down within one worker, so a lower value is a stale copy, e.g.
  the agent's pre-reload snapshot of a worker still finishing connections,
  and adds nothing);
- a worker never seen before (a new worker after a reload or restart) adds
  its whole reading: its counters started at zero;
- a worker no longer reported is forgotten (it has exited, and the agent's
  pre-reload snapshot of it, :class:`~lbaas.dataplane.runtime.WorkerStats`,
  is gone too): it can never come back, workers are named
  ``"<pid>@<start time>"``.

What is counted (as Octavia's amphora health daemon does), from ``show stat``:

- listener: its ``FRONTEND`` row (one per listener, proxy name = listener
  id): ``bin`` -> bytes_in, ``bout`` -> bytes_out, ``stot`` ->
  total_connections, ``ereq`` -> request_errors, ``scur`` ->
  active_connections;
- member: its ``server`` rows (one per backend its pool is used in, i.e. per
  listener), summed: ``bin``, ``bout``, ``stot``, ``scur``.

``active_connections`` is not accumulated: it is the current value, summed
over the workers still running (an old worker's connections are still open).

Traffic lost: what a worker accounted for between the last poll and its
exit when it was not retired by a reload (a crash, a kill), and counters an
operator clears by hand (``clear counters``) until they pass their old value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lbaas.dataplane.runtime import LoadBalancerStats, StatRow

LISTENER_COUNTERS = ("bytes_in", "bytes_out", "total_connections", "request_errors")
MEMBER_COUNTERS = ("bytes_in", "bytes_out", "total_connections")

Reading = tuple[int, ...]
"""Raw counters of one object in one worker, in the order of ``*_COUNTERS``."""


def listener_reading(row: StatRow) -> Reading:
    """A frontend row as (bytes_in, bytes_out, total_connections, request_errors)."""
    return (row.bin, row.bout, row.stot, row.ereq or 0)


def member_reading(row: StatRow) -> Reading:
    """A server row as (bytes_in, bytes_out, total_connections)."""
    return (row.bin, row.bout, row.stot)


def _add(a: Sequence[int], b: Sequence[int]) -> Reading:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _max(a: Sequence[int], b: Sequence[int]) -> Reading:
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Observed:
    """One object's counters in one poll.

    ``readings``: raw counters per worker identity (every worker that reported
    the object, live or retired); ``active``: current connections over the
    live workers.
    """

    readings: dict[str, Reading] = field(default_factory=dict)
    active: int = 0


@dataclass(frozen=True)
class Observation:
    """Counters of one load balancer's objects in one poll, by listener and member id."""

    listeners: dict[str, Observed]
    members: dict[str, Observed]


def _sources(stats: LoadBalancerStats) -> Iterable[tuple[str, bool, tuple[StatRow, ...]]]:
    if stats.worker is not None:
        yield stats.worker, True, stats.rows
    for other in stats.others:
        yield other.worker, other.live, other.rows


def collect(stats: LoadBalancerStats) -> Observation:
    """Group ``stats`` (an answered poll: ``running`` and no ``error``) by object.

    Within one worker a member's server rows are summed over backends; a
    worker reported twice (live and as a pre-reload snapshot, or current and
    snapshot after a failed reload) keeps the larger value of each counter.
    """
    readings: dict[str, dict[str, dict[str, Reading]]] = {"listener": {}, "member": {}}
    active: dict[str, dict[str, dict[str, int]]] = {"listener": {}, "member": {}}
    for worker, live, rows in _sources(stats):
        summed: dict[tuple[str, str], Reading] = {}
        scur: dict[tuple[str, str], int] = {}
        for row in rows:
            if row.type == "frontend":
                key, value = ("listener", row.proxy), listener_reading(row)
            elif row.type == "server":
                key, value = ("member", row.name), member_reading(row)
            else:
                continue
            summed[key] = _add(summed[key], value) if key in summed else value
            scur[key] = scur.get(key, 0) + row.scur
        for (kind, obj_id), value in summed.items():
            per_worker = readings[kind].setdefault(obj_id, {})
            per_worker[worker] = _max(per_worker[worker], value) if worker in per_worker \
                else value
            if live:
                active[kind].setdefault(obj_id, {})[worker] = scur[(kind, obj_id)]
    out = {kind: {obj_id: Observed(readings=per_worker,
                                   active=sum(active[kind].get(obj_id, {}).values()))
                  for obj_id, per_worker in by_id.items()}
           for kind, by_id in readings.items()}
    return Observation(listeners=out["listener"], members=out["member"])


def accumulate(totals: Sequence[int], last: Mapping[str, Sequence[int]],
               now: Mapping[str, Sequence[int]]) -> tuple[Reading, dict[str, Reading]]:
    """Add the growth of ``now`` over ``last`` to ``totals``.

    ``totals``: cumulative counters so far; ``last``: the stored last reading
    per worker; ``now``: this poll's reading per worker (all three in the
    same counter order). Returns (new totals, readings to store): the stored
    readings are those of the workers in ``now``, each the larger of its
    last and current value per counter. Pure; see the module docstring for
    the rules.
    """
    grown = tuple(totals)
    kept: dict[str, Reading] = {}
    for worker, reading in now.items():
        before = last.get(worker)
        if before is None or len(before) != len(reading):
            grown = _add(grown, reading)
            after = tuple(reading)
        else:
            grown = _add(grown, [max(0, x - y) for x, y in zip(reading, before, strict=True)])
            after = _max(before, reading)
        if any(after):  # an all-zero reading need not be kept: unknown means zero
            kept[worker] = after
    return grown, kept
