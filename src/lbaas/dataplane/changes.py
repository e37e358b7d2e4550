"""Which changes between two configurations the runtime API can make without a reload.

Member changes are hitless (style item 8, and dataplaneapi's
``serverChangeThroughRuntimeAPI``): if two views differ only in their
``server`` lines, the difference becomes stats-socket commands (management
manual, 9.3): ``add server``, ``set server <b>/<s> state ready|maint``,
``set server ... weight``, ``set server ... addr ... port``,
``set server ... check-addr`` / ``check-port``, ``enable health`` and
``del server``. Everything else (and any member change these commands cannot
express: a new ``backup`` flag, adding a server to a backend with per-server
cookies, dropping a monitor address) returns None: the caller reloads.

The caller writes haproxy.cfg right after the commands (a new member takes
traffic first: issue 12), before it reports the change done, so the file
stays the truth: servers added at runtime vanish on the next reload, which
finds them in the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lbaas.dataplane.render import BackendView, LoadBalancerView, ServerView

# Server options the runtime API can change in place; anything else differing
# between two versions of a server line needs a reload.
_RUNTIME_OPTIONS = {"weight": 1, "addr": 1, "port": 1, "disabled": 0}


@dataclass(frozen=True)
class RuntimePlan:
    """Commands for the stats socket, in order, then servers to delete.

    ``deletions`` are ``<backend>/<server>`` names: each is put in
    maintenance by ``commands`` and deleted once its connections are gone
    (``del server`` refuses while any remain).
    """

    commands: tuple[str, ...]
    deletions: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.commands or self.deletions)


def _skeleton(view: LoadBalancerView) -> LoadBalancerView:
    return dataclasses.replace(view, backends=tuple(
        dataclasses.replace(b, servers=()) for b in view.backends))


def _fixed_options(server: ServerView) -> tuple[str, ...]:
    out: list[str] = []
    words = list(server.options)
    i = 0
    while i < len(words):
        arity = _RUNTIME_OPTIONS.get(words[i])
        if arity is None:
            out.append(words[i])
            i += 1
        else:
            i += 1 + arity
    return tuple(out)


def _add(backend: BackendView, server: ServerView) -> list[str] | None:
    if not backend.dynamic or server.cookie:
        return None
    ref = f"{backend.name}/{server.name}"
    # A dynamic server starts in maintenance with its checks off (2.6).
    commands = [f"add server {ref} {server.address} {' '.join(server.options)}"]
    if server.check:
        commands.append(f"enable health {ref}")
    if server.enabled:
        commands.append(f"set server {ref} state ready")
    return commands


def _change(backend: BackendView, old: ServerView, new: ServerView) -> list[str] | None:
    if _fixed_options(old) != _fixed_options(new):
        return None
    if (old.check_addr and not new.check_addr) or (old.check_port and not new.check_port):
        return None
    ref = f"{backend.name}/{new.name}"
    commands = []
    if (old.host, old.port) != (new.host, new.port):
        commands.append(f"set server {ref} addr {new.host} port {new.port}")
    if new.check_addr and new.check_addr != old.check_addr:
        commands.append(f"set server {ref} check-addr {new.check_addr}")
    if new.check_port and new.check_port != old.check_port:
        commands.append(f"set server {ref} check-port {new.check_port}")
    if old.weight != new.weight:
        commands.append(f"set server {ref} weight {new.weight}")
    if old.enabled != new.enabled:
        commands.append(f"set server {ref} state {'ready' if new.enabled else 'maint'}")
    return commands


def _differing(old: tuple[ServerView, ...], new: tuple[ServerView, ...],
               ) -> tuple[tuple[ServerView, ...], tuple[ServerView, ...]]:
    """``old`` and ``new`` without the servers they share at their start and at their
    end (the same objects: cached views), so that a member added to or removed from a
    pool of a thousand is compared alone (issue 12). A name is in both results or in
    the shared part of both, never in one result and the other's shared part: a
    server's name is unique in its backend."""
    start, end = 0, min(len(old), len(new))
    while start < end and old[start] is new[start]:
        start += 1
    tail = 0
    while tail < end - start and old[-1 - tail] is new[-1 - tail]:
        tail += 1
    return old[start:len(old) - tail], new[start:len(new) - tail]


def plan(old: LoadBalancerView, new: LoadBalancerView) -> RuntimePlan | None:
    """Runtime commands turning ``old`` into ``new``, or None if a reload is needed."""
    if _skeleton(old) != _skeleton(new):
        return None
    commands: list[str] = []
    deletions: list[str] = []
    for old_be, new_be in zip(old.backends, new.backends, strict=True):
        old_servers, new_servers = _differing(old_be.servers, new_be.servers)
        before = {s.name: s for s in old_servers}
        after = {s.name: s for s in new_servers}
        for name, server in after.items():
            old_server = before.get(name)
            if old_server == server:  # most of a pool of thousands (cached views: the same)
                continue
            step = _add(new_be, server) if old_server is None \
                else _change(new_be, old_server, server)
            if step is None:
                return None
            commands += step
        for name in before.keys() - after.keys():
            ref = f"{old_be.name}/{name}"
            commands.append(f"set server {ref} state maint")
            deletions.append(ref)
    return RuntimePlan(tuple(commands), tuple(sorted(deletions)))
