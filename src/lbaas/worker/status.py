"""provisioning_status: every transition, in one place.

The load balancer row is the lock (Octavia's ``test_and_set_provisioning_status``):
a change starts by moving its load balancer out of a settled status into a
PENDING_* status with one conditional ``UPDATE``; if no row matched, another
change is in flight and the caller gets :class:`ImmutableObject` (409). The
worker ends the change by settling every PENDING_* object of the graph.

Transitions::

    begin (API)                             finish (worker)
    ACTIVE|ERROR  -> PENDING_UPDATE          PENDING_CREATE|PENDING_UPDATE -> ACTIVE | ERROR
    ACTIVE|ERROR  -> PENDING_DELETE (LB)     PENDING_DELETE -> row removed | ERROR
    (new row)     -> PENDING_CREATE

    begin (health manager: the data plane lost an ACTIVE load balancer)
    ACTIVE        -> PENDING_UPDATE (LB)     then finish as above

    begin (agent registry: its agent was declared dead; rebuilt elsewhere)
    ACTIVE|ERROR  -> PENDING_UPDATE (LB)     failover, then finish as above
    PENDING_CREATE|PENDING_UPDATE            unchanged; the change in flight rebuilds it

    begin (agent registry: a failover found no agent, and one can take it now)
    ERROR         -> PENDING_UPDATE (LB)     failover again, then finish as above

Unlike Octavia, a load balancer in ERROR may be changed (not only deleted or
failed over): a failed apply leaves it in ERROR with the reason, and the
tenant fixes it by changing or deleting the object that broke it.

Every change begun here counts in the load balancer's ``graph_version``
(:func:`_lock`): a worker patches the members it kept from the change
before when the version moved by exactly one
(:class:`lbaas.worker.graph.MemberCache`), and a list writes a body it kept
again once the version moved (:class:`lbaas.api.deps.KeptBodies`). So
whatever changes a load balancer's graph, or a field of it other than its
statuses, begins here.

Nothing else writes ``provisioning_status``, nor an amphora's ``status``:
PENDING_CREATE with its new load balancer, ALLOCATED once a change is applied,
PENDING_DELETE while its load balancer is deleted (the row goes with it),
ERROR when its first start or its removal failed (a failed change leaves an
amphora that serves the previous configuration ALLOCATED). An ACTIVE_STANDBY
failover marks the amphorae to rebuild PENDING_DELETE (:func:`begin_failover`);
the worker replaces each in turn (:func:`replace_amphora`: the old row goes,
a new one, PENDING_CREATE, takes its port), and one not replaced when the
failover fails is ALLOCATED again (it still serves) unless it lost its agent
(:func:`~lbaas.worker.amphorae.lost`: ERROR, it serves nowhere). A health monitor, an L7
policy or an L7 rule that settles ACTIVE also gets its ``operating_status``
here, ONLINE if enabled else OFFLINE, as Octavia's ``MarkHealthMonitorActiveInDB``,
``MarkL7PolicyActiveInDB`` and ``MarkL7RuleActiveInDB`` do for every provider;
for a health monitor the health manager takes over from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models
from lbaas.db.models import utcnow
from lbaas.worker import amphorae

# Settled statuses from which a change may start.
MUTABLE_STATUSES: Final = (c.ACTIVE, c.ERROR)
DELETABLE_STATUSES: Final = (c.ACTIVE, c.ERROR)
FAILOVERABLE_STATUSES: Final = (c.ACTIVE, c.ERROR)

GraphObject = (models.LoadBalancer | models.Listener | models.Pool | models.Member
               | models.HealthMonitor | models.L7Policy | models.L7Rule)


def _lock(session: Session, lb_id: str, new_status: str, allowed: tuple[str, ...]) -> None:
    """Move load balancer ``lb_id`` to ``new_status`` if it is in ``allowed``, counting
    the change in its ``graph_version``.

    Raises :class:`ImmutableObject` (409) when it is not (a change is in flight).
    """
    result = session.execute(
        update(models.LoadBalancer)
        .where(models.LoadBalancer.id == lb_id,
               models.LoadBalancer.provisioning_status.in_(allowed))
        .values(provisioning_status=new_status, updated_at=utcnow(),
                graph_version=models.LoadBalancer.graph_version + 1)
        .execution_options(synchronize_session="fetch"))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise exc.ImmutableObject(resource="Load Balancer", id=lb_id)


def begin_create_load_balancer(lb: models.LoadBalancer) -> None:
    """A new load balancer (and any children created with it) is PENDING_CREATE, and
    so are its amphorae."""
    for obj in walk(lb):
        obj.provisioning_status = c.PENDING_CREATE
    for amphora in lb.amphorae:
        amphora.status = c.AMPHORA_PENDING_CREATE


def begin_update_load_balancer(session: Session, lb: models.LoadBalancer) -> None:
    """Lock ``lb`` for an update of its own fields. Raises ImmutableObject."""
    _lock(session, lb.id, c.PENDING_UPDATE, MUTABLE_STATUSES)


def begin_delete_load_balancer(session: Session, lb: models.LoadBalancer,
                               cascade: bool) -> None:
    """Lock ``lb`` for deletion; with ``cascade`` its whole graph goes too.

    Raises ImmutableObject.
    """
    _lock(session, lb.id, c.PENDING_DELETE, DELETABLE_STATUSES)
    for amphora in lb.amphorae:
        amphora.status = c.AMPHORA_PENDING_DELETE
    if cascade:
        for obj in walk(lb):
            obj.provisioning_status = c.PENDING_DELETE


def begin_failover(session: Session, lb: models.LoadBalancer,
                   amphora: models.Amphora | None = None) -> None:
    """Lock ``lb`` to rebuild its data plane from the database. Raises ImmutableObject.

    ACTIVE_STANDBY: ``amphora`` (else both) is marked PENDING_DELETE, to be
    replaced by a new one (:func:`replace_amphora`).
    """
    _lock(session, lb.id, c.PENDING_UPDATE, FAILOVERABLE_STATUSES)
    lb.failover_requested = True
    if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
        for each in lb.amphorae:
            if amphora is None or each.id == amphora.id:
                each.status = c.AMPHORA_PENDING_DELETE


def begin_amphora_failover(session: Session, lb_id: str, amphora_id: str) -> None:
    """Lock ACTIVE load balancer ``lb_id`` to replace its amphora ``amphora_id``.

    For the health manager, when the data plane reports an amphora that
    cannot serve and will not come back by itself (Octavia's health
    manager fails such an amphora over). Only ACTIVE; raises ImmutableObject
    otherwise (a change in flight, or ERROR waiting for its tenant).
    """
    _lock(session, lb_id, c.PENDING_UPDATE, (c.ACTIVE,))
    lb = session.get(models.LoadBalancer, lb_id)
    assert lb is not None
    lb.failover_requested = True
    for each in lb.amphorae:
        if each.id == amphora_id:
            each.status = c.AMPHORA_PENDING_DELETE


def replace_amphora(session: Session, lb: models.LoadBalancer,
                    old: models.Amphora) -> models.Amphora:
    """Replace ACTIVE_STANDBY amphora ``old`` (PENDING_DELETE) by a new one, PENDING_CREATE,
    built for the same role, on its port (``vrrp_ip``); the old row goes."""
    new = amphorae.replacement(lb, old)
    port = session.get(models.Port, old.vrrp_port_id) if old.vrrp_port_id else None
    if port is not None:
        port.device_id = new.id
    lb.amphorae.remove(old)
    session.delete(old)
    lb.amphorae.append(new)
    session.flush()
    return new


def begin_agent_failover(session: Session, lb: models.LoadBalancer) -> bool:
    """``lb``'s agent was declared dead: rebuild it from the database on another agent.

    Its amphorae left without an agent are ERROR (until the rebuild). A
    settled (ACTIVE or ERROR) load balancer starts a failover
    (:func:`begin_failover`), but for an ACTIVE_STANDBY one whose other
    amphora lives on another agent: that one keeps serving (keepalived gave
    it the VIP) and only the lost one is placed again, on another agent, as
    it was (same id and port), by applying the load balancer again. One with
    a change in flight keeps its status and the change rebuilds it when it
    runs (again); one being deleted is left alone (there is nothing to
    rebuild). Returns True if the worker has something to do.

    Also the retry of a failover that found no agent (the load balancer in
    ERROR, its amphorae still lost): :meth:`~lbaas.worker.agents.AgentRegistry.retry_failovers`.
    Raises ImmutableObject if another process began it first.
    """
    lost = [a for a in lb.amphorae if a.agent_id is None]
    for amphora in lost:
        amphora.status = c.AMPHORA_ERROR
    if lb.provisioning_status in FAILOVERABLE_STATUSES:
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY and 0 < len(lost) < len(lb.amphorae):
            _lock(session, lb.id, c.PENDING_UPDATE, FAILOVERABLE_STATUSES)
        else:
            begin_failover(session, lb)
        return True
    if lb.provisioning_status in (c.PENDING_CREATE, c.PENDING_UPDATE):
        lb.failover_requested = True
        return True
    return False


def begin_reapply(session: Session, lb_id: str) -> None:
    """Lock ACTIVE load balancer ``lb_id`` to apply it again from the database.

    For the health manager, when the data plane reports that it cannot start
    the load balancer's HAProxy again by itself (no spec left on the host, or
    a restart that failed); the worker then sends the whole spec as for any
    change, so a failure ends in ERROR with the reason. Only ACTIVE: a
    change in flight applies it anyway, and an ERROR one waits for its
    tenant. Raises ImmutableObject otherwise.
    """
    _lock(session, lb_id, c.PENDING_UPDATE, (c.ACTIVE,))


def begin_create(session: Session, lb_id: str, new: Iterable[GraphObject],
                 parents: Iterable[GraphObject] = ()) -> None:
    """Lock load balancer ``lb_id`` for the creation of ``new`` objects.

    ``new`` objects (with everything nested under them) become PENDING_CREATE;
    ``parents`` (e.g. the pool and listeners of a new member, as Octavia
    does) become PENDING_UPDATE. Raises ImmutableObject.
    """
    _lock(session, lb_id, c.PENDING_UPDATE, MUTABLE_STATUSES)
    for obj in new:
        for child in walk(obj):
            child.provisioning_status = c.PENDING_CREATE
    for parent in parents:
        parent.provisioning_status = c.PENDING_UPDATE


def begin_update(session: Session, lb_id: str, obj: GraphObject,
                 parents: Iterable[GraphObject] = ()) -> None:
    """Lock load balancer ``lb_id`` for an update of ``obj``. Raises ImmutableObject."""
    _lock(session, lb_id, c.PENDING_UPDATE, MUTABLE_STATUSES)
    obj.provisioning_status = c.PENDING_UPDATE
    for parent in parents:
        parent.provisioning_status = c.PENDING_UPDATE


def begin_delete(session: Session, lb_id: str, obj: GraphObject,
                 parents: Iterable[GraphObject] = ()) -> None:
    """Lock load balancer ``lb_id`` for the deletion of ``obj`` and its children.

    Raises ImmutableObject.
    """
    _lock(session, lb_id, c.PENDING_UPDATE, MUTABLE_STATUSES)
    for child in walk(obj):
        child.provisioning_status = c.PENDING_DELETE
    for parent in parents:
        parent.provisioning_status = c.PENDING_UPDATE


def begin_batch(session: Session, lb_id: str, created: Iterable[GraphObject],
                updated: Iterable[GraphObject], deleted: Iterable[GraphObject],
                parents: Iterable[GraphObject] = ()) -> None:
    """Lock ``lb_id`` for a batch (e.g. a member batch update). Raises ImmutableObject."""
    _lock(session, lb_id, c.PENDING_UPDATE, MUTABLE_STATUSES)
    for obj in created:
        obj.provisioning_status = c.PENDING_CREATE
    for obj in updated:
        obj.provisioning_status = c.PENDING_UPDATE
    for obj in deleted:
        obj.provisioning_status = c.PENDING_DELETE
    for parent in parents:
        parent.provisioning_status = c.PENDING_UPDATE


def walk(obj: GraphObject) -> Iterator[GraphObject]:
    """``obj`` and every object under it in the load balancer graph, parents first."""
    yield obj
    if isinstance(obj, models.LoadBalancer):
        for listener in obj.listeners:
            yield from walk(listener)
        for pool in obj.pools:
            yield from walk(pool)
    elif isinstance(obj, models.Listener):
        for policy in obj.l7policies:
            yield from walk(policy)
    elif isinstance(obj, models.L7Policy):
        yield from obj.rules
    elif isinstance(obj, models.Pool):
        yield from obj.members
        if obj.health_monitor is not None:
            yield obj.health_monitor


def is_pending(lb: models.LoadBalancer) -> bool:
    """True while a change of ``lb`` waits for the worker."""
    return lb.provisioning_status in c.PENDING_STATUSES


def finish(session: Session, lb: models.LoadBalancer, error: str | None) -> bool:
    """Settle every PENDING_* object of ``lb``'s graph after the driver ran.

    ``error`` is None on success, else the reason shown to the tenant.
    On success PENDING_DELETE objects are removed (the load balancer too,
    with its VIP port); on failure everything pending becomes ERROR and the
    reason is kept on the load balancer. Returns True if ``lb`` was removed.
    """
    ok = error is None
    if lb.provisioning_status == c.PENDING_DELETE and ok:
        devices = [lb.id, *(a.id for a in lb.amphorae)]  # its VIP, its amphorae's ports
        session.execute(delete(models.Port).where(models.Port.device_id.in_(devices)))
        _drop_tags(session, list(walk(lb)))
        session.delete(lb)
        return True
    doomed: list[GraphObject] = []
    for obj in walk(lb):
        if obj is lb:
            continue
        if obj.provisioning_status == c.PENDING_DELETE and ok:
            doomed.append(obj)
        elif obj.provisioning_status in c.PENDING_STATUSES:
            obj.provisioning_status = c.ACTIVE if ok else c.ERROR
            if ok and isinstance(obj, models.HealthMonitor | models.L7Policy
                                 | models.L7Rule):
                # Octavia's MarkHealthMonitorActiveInDB, MarkL7PolicyActiveInDB and
                # MarkL7RuleActiveInDB, whatever the provider.
                obj.operating_status = c.ONLINE if obj.admin_state_up else c.OFFLINE
    _drop_tags(session, doomed)
    for obj in doomed:
        _detach(obj)
        session.delete(obj)
    for amphora in lb.amphorae:
        if ok:
            amphora.status = c.AMPHORA_ALLOCATED
        elif amphorae.lost(amphora):
            amphora.status = c.AMPHORA_ERROR  # its agent is dead, and none took it
        elif amphora.status == c.AMPHORA_PENDING_DELETE and lb.failover_requested:
            amphora.status = c.AMPHORA_ALLOCATED  # not replaced: it still serves
        elif amphora.status in (c.AMPHORA_PENDING_CREATE, c.AMPHORA_PENDING_DELETE):
            # never started, or not stopped; one already serving keeps serving
            amphora.status = c.AMPHORA_ERROR
    lb.provisioning_status = c.ACTIVE if ok else c.ERROR
    lb.provisioning_status_reason = error
    lb.failover_requested = False
    lb.updated_at = utcnow()
    return False


def _drop_tags(session: Session, objs: list[GraphObject]) -> None:
    """Delete the tags of ``objs`` (about to be deleted) in one statement, and tell the
    session they have none left: :func:`lbaas.worker.graph.load_graph` leaves tags
    unloaded, and the delete's cascade would otherwise read each one's apart (a load
    balancer with a pool of 1,000 members: 1,000 queries)."""
    if not objs:
        return
    session.execute(delete(models.Tag).where(
        models.Tag.resource_id.in_([obj.id for obj in objs])))
    for obj in objs:
        set_committed_value(obj, "_tags", [])


def _detach(obj: GraphObject) -> None:
    """Remove ``obj`` from its parent's collection so the session forgets it."""
    if isinstance(obj, models.Listener):
        obj.load_balancer.listeners.remove(obj)
    elif isinstance(obj, models.Pool):
        for listener in obj.default_listeners:
            listener.default_pool_id = None
        obj.load_balancer.pools.remove(obj)
    elif isinstance(obj, models.Member):
        obj.pool.members.remove(obj)
    elif isinstance(obj, models.HealthMonitor):
        obj.pool.health_monitor = None
    elif isinstance(obj, models.L7Policy):
        obj.listener.l7policies.remove(obj)
    elif isinstance(obj, models.L7Rule):
        obj.l7policy.rules.remove(obj)
