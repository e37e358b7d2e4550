"""The ``namespace`` placement: neutron-lbaas's network-node layout, done with pyroute2.

One network namespace per load balancer, joined to a Linux bridge per VIP
subnet by a veth pair; HAProxy runs inside the namespace::

    host namespace                           qlbaas-<lb_id>
    ──────────────────────────────────       ───────────────────────────────
    lbr-<subnet key>  (bridge, up)           lo (up)
      gateway_ip/prefix, fixed MAC           lbn-<lb key>  VIP/prefix, up
      ├── lbh-<lb key> ═══ veth pair ══════╡ default via gateway_ip
      ├── lbh-<other lb key>                 haproxy (Popen(preexec_fn=...))
      └── (backend hosts' ports)

This is how the neutron-lbaas HAProxy namespace driver laid out a network
node: namespace ``qlbaas-<loadbalancer id>``, the VIP port plugged into it,
a default route via the subnet's gateway, and a gratuitous ARP after the VIP
moves. Here the agent also plays Neutron's part: it creates the subnet's
bridge and gives it the gateway address, so the host itself is the first
neighbour on every VIP subnet.

Names (Linux interface names are at most 15 characters, ``IFNAMSIZ - 1``):

- namespace ``qlbaas-<lb_id>`` (the full id, as neutron-lbaas named it);
- bridge ``lbr-<first 11 hex digits of the subnet id>``;
- veth ``lbh-<first 11 hex digits of the lb id>`` (host end, on the bridge)
  and ``lbn-<same>`` (namespace end, holds the VIP).

Each interface we create carries an alias (``lbaas subnet=<id>`` /
``lbaas lb=<id>``) so that a clash of the shortened names is detected and
refused instead of re-plumbing somebody else's load balancer.

Why :meth:`NamespacePlacement.announce` matters: a rebuilt namespace has a
new veth with a new MAC, but neighbours keep the old one (measured: the VIP
is unreachable from the host for 35-51 s, until the stale entry times out).
``announce`` flushes the host's entry for the VIP on the bridge (immediate)
and sends gratuitous ARPs from inside the namespace with ``arping -U``
(iputils-arping) for every other neighbour on the bridge.

Every function here blocks on netlink and must be called from a thread with
no running asyncio event loop (pyroute2's synchronous ``IPRoute`` runs its
own loop), e.g. the worker's threads or ``asyncio.to_thread``. Root
(CAP_NET_ADMIN and CAP_SYS_ADMIN) is required.

Limits: IPv4 VIPs only, and only the primary VIP (``additional_vips`` are
refused), see :class:`PlacementError`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from lbaas.common import constants as c
from lbaas.common.exceptions import DriverError, UnsupportedOption
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec

log = logging.getLogger(__name__)

NAMESPACE_PREFIX = c.NAMESPACE_PREFIX
AMPHORA_NAMESPACE_PREFIX = c.AMPHORA_NAMESPACE_PREFIX
BRIDGE_PREFIX = "lbr-"
VETH_HOST_PREFIX = "lbh-"
VETH_NS_PREFIX = "lbn-"
IFNAME_MAX = 15  # IFNAMSIZ (16) minus the terminating NUL
NETNS_RUN_DIR = "/var/run/netns"  # where `ip netns` and pyroute2 mount named namespaces

_KEY_LEN = IFNAME_MAX - 4  # the prefixes above are 4 characters
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
_BRIDGE_ALIAS = "lbaas subnet="
_VETH_ALIAS = "lbaas lb="
_AMPHORA_ALIAS = "lbaas amphora="
# OpenStack's MAC prefix (locally administered, unicast), as Neutron ports use.
_MAC_PREFIX = "fa:16:3e"


class PlacementError(DriverError):
    """The namespace placement cannot realise a load balancer's VIP.

    ``reason`` says why in words a tenant or operator can act on (no gateway
    on the subnet, an IPv6 VIP, a name clash, the kernel refusing a netlink
    request or a namespace operation, with the original as ``__cause__``). A
    :class:`~lbaas.common.exceptions.DriverError`, so the provider driver
    reports it like any other failure to realise a load balancer.
    """


# --------------------------------------------------------------------------
# Names


def _check_id(kind: str, ident: str) -> str:
    if not _ID_RE.match(ident):
        raise PlacementError(f"{kind} id {ident!r} cannot name a namespace or interface")
    return ident


def _key(kind: str, ident: str) -> str:
    """The first hex digits of an id (dashes dropped, lower case), as interface-name suffix."""
    key = re.sub(r"[^0-9a-z]", "", _check_id(kind, ident).lower())[:_KEY_LEN]
    if not key:
        raise PlacementError(f"{kind} id {ident!r} has no letters or digits to name an interface")
    return key


def namespace_name(lb_id: str) -> str:
    """``qlbaas-<lb_id>``: neutron-lbaas's name for a load balancer's namespace (full id).

    Raises :class:`PlacementError` for an id that is not a safe file name
    (letters, digits, ``-``, ``_``, ``.``; the name becomes a path under
    ``/var/run/netns``).
    """
    return NAMESPACE_PREFIX + _check_id("load balancer", lb_id)


def amphora_namespace_name(amphora_id: str) -> str:
    """``amphora-<amphora_id>``: the namespace of one amphora of an ACTIVE_STANDBY load
    balancer (Octavia names an amphora's VM so); its ``compute_id``."""
    return AMPHORA_NAMESPACE_PREFIX + _check_id("amphora", amphora_id)


def bridge_name(subnet_id: str) -> str:
    """``lbr-<11 hex digits of subnet_id>``: the Linux bridge of a VIP subnet (15 characters)."""
    return BRIDGE_PREFIX + _key("subnet", subnet_id)


class VethNames(NamedTuple):
    """The two ends of a load balancer's veth pair."""

    host: str  # in the host namespace, a port of the subnet's bridge
    namespace: str  # inside qlbaas-<lb_id>, holds the VIP


def veth_names(lb_id: str) -> VethNames:
    """``lbh-<key>`` / ``lbn-<key>``, key = the first 11 hex digits of ``lb_id``."""
    key = _key("load balancer", lb_id)
    return VethNames(VETH_HOST_PREFIX + key, VETH_NS_PREFIX + key)


def bridge_mac(subnet_id: str) -> str:
    """A stable MAC for a subnet's bridge: ``fa:16:3e`` + 3 bytes of SHA-256 of the id.

    A Linux bridge without an explicitly set address takes the lowest MAC of
    its ports and changes it when ports come and go; every namespace would
    then hold a stale neighbour entry for the gateway. A set address sticks,
    and deriving it from the subnet id keeps it across bridge re-creation.
    """
    digest = hashlib.sha256(_check_id("subnet", subnet_id).encode()).digest()
    return ":".join([_MAC_PREFIX, *(f"{b:02x}" for b in digest[:3])])


# --------------------------------------------------------------------------
# What to build for one load balancer


@dataclass(frozen=True)
class SubnetPlan:
    """A VIP subnet as the host sees it: its bridge and the gateway address on it."""

    subnet_id: str
    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    @property
    def bridge(self) -> str:
        return bridge_name(self.subnet_id)

    @classmethod
    def of(cls, subnet_id: str | None, cidr: str | None, gateway_ip: str | None) -> SubnetPlan:
        """Check a subnet's fields; raises :class:`PlacementError` naming what is missing."""
        if not subnet_id:
            raise PlacementError("the namespace placement needs the VIP's subnet_id")
        if not cidr:
            raise PlacementError(f"subnet {subnet_id} has no CIDR; the VIP needs a prefix length")
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError as e:
            raise PlacementError(f"subnet {subnet_id} has an invalid CIDR {cidr!r}") from e
        if not isinstance(network, ipaddress.IPv4Network):
            raise PlacementError(f"subnet {subnet_id} is IPv6 ({cidr}); the namespace placement "
                                 "supports IPv4 VIPs only")
        if not gateway_ip:
            # Without a gateway there is no default route for replies to
            # clients off the subnet, and a bridge with no address gives the
            # host no way to reach the VIP: the load balancer would look
            # ACTIVE and serve nobody. Refuse, as early as possible.
            raise PlacementError(f"subnet {subnet_id} has no gateway_ip; the namespace placement "
                                 "puts the gateway address on the subnet's bridge and routes "
                                 "via it, so it needs one")
        gateway = ipaddress.ip_address(gateway_ip)
        if not isinstance(gateway, ipaddress.IPv4Address) or gateway not in network:
            raise PlacementError(f"gateway {gateway_ip} is not in subnet {subnet_id} ({cidr})")
        return cls(subnet_id, network, gateway)


@dataclass(frozen=True)
class PortPlan:
    """Everything :meth:`NamespacePlacement.prepare` makes for one namespace.

    SINGLE (:meth:`of` a load balancer): ``qlbaas-<lb_id>``, the VIP on its
    veth. ACTIVE_STANDBY (:meth:`of` a load balancer and one of its
    amphorae): ``amphora-<amphora_id>``, the amphora's ``vrrp_ip`` on its
    veth, and the VIPs that keepalived adds there (/32) while it is MASTER,
    which prepare leaves alone.
    """

    lb_id: str
    address: ipaddress.IPv4Address
    subnet: SubnetPlan
    amphora_id: str | None = None
    vips: tuple[ipaddress.IPv4Address, ...] = ()  # amphora: held by keepalived, not by prepare

    @property
    def namespace(self) -> str:
        if self.amphora_id is not None:
            return amphora_namespace_name(self.amphora_id)
        return namespace_name(self.lb_id)

    @property
    def veth(self) -> VethNames:
        if self.amphora_id is not None:
            return veth_names(self.amphora_id)
        return veth_names(self.lb_id)

    @property
    def alias(self) -> str:
        """The interfaces' alias: ``lbaas lb=<lb_id>`` or ``lbaas amphora=<amphora_id>``."""
        if self.amphora_id is not None:
            return _AMPHORA_ALIAS + self.amphora_id
        return _VETH_ALIAS + self.lb_id

    @classmethod
    def of(cls, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> PortPlan:
        """Validate ``lb.vip`` (and ``amphora.vrrp_ip``); raises :class:`PlacementError`."""
        namespace_name(lb.id)
        veth_names(lb.id)
        if lb.additional_vips:
            raise PlacementError("the namespace placement does not support additional VIPs")
        vip = lb.vip
        subnet = SubnetPlan.of(vip.subnet_id, vip.subnet_cidr, vip.gateway_ip)
        address = _subnet_address(vip.address, "VIP", subnet)
        if amphora is None:
            return cls(lb.id, address, subnet)
        amphora_namespace_name(amphora.id)
        veth_names(amphora.id)
        own = _subnet_address(amphora.vrrp_ip, f"amphora {amphora.id}'s vrrp_ip", subnet)
        if own == address:
            raise PlacementError(f"amphora {amphora.id}'s vrrp_ip {own} is the VIP")
        return cls(lb.id, own, subnet, amphora_id=amphora.id, vips=(address,))


def _subnet_address(value: str, what: str, subnet: SubnetPlan) -> ipaddress.IPv4Address:
    """``value`` as an address of ``subnet`` other than its gateway's."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError as e:
        raise PlacementError(f"invalid {what} {value!r}") from e
    if not isinstance(address, ipaddress.IPv4Address) or address not in subnet.network:
        raise PlacementError(f"{what} {value} is not in subnet {subnet.subnet_id} "
                             f"({subnet.network})")
    if address == subnet.gateway:
        raise PlacementError(f"{what} {value} is the gateway address of subnet "
                             f"{subnet.subnet_id}")
    return address


def active_standby_plans(lb: LoadBalancerSpec) -> list[PortPlan]:
    """The plans of ``lb``'s two amphorae; raises :class:`PlacementError` for a pair that
    cannot work (not one MASTER and one BACKUP, no VRRP group, equal addresses)."""
    if lb.vrrp is None:
        raise PlacementError("an ACTIVE_STANDBY load balancer needs a VRRP group")
    roles = sorted(a.role for a in lb.amphorae)
    if roles != sorted((c.AMPHORA_ROLE_MASTER, c.AMPHORA_ROLE_BACKUP)):
        raise PlacementError("an ACTIVE_STANDBY load balancer needs one MASTER and one BACKUP "
                             f"amphora, not {roles or 'none'}")
    plans = [PortPlan.of(lb, a) for a in lb.amphorae]
    if plans[0].address == plans[1].address:
        raise PlacementError(f"both amphorae have vrrp_ip {plans[0].address}")
    if plans[0].amphora_id == plans[1].amphora_id:
        raise PlacementError(f"both amphorae have id {plans[0].amphora_id}")
    return plans


# --------------------------------------------------------------------------
# Namespaces and processes inside them


def namespace_path(name: str) -> str:
    """The bind mount that names a namespace (``/var/run/netns/<name>``, as ``ip netns``)."""
    return os.path.join(NETNS_RUN_DIR, name)


def namespace_exists(name: str) -> bool:
    """True if ``name`` is a live, mounted network namespace.

    A crash inside namespace creation can leave ``/var/run/netns/<name>`` as
    an empty file with nothing mounted on it; that is *not* a namespace
    (entering it fails with EINVAL). A mounted one lives on nsfs, the file
    system of ``/proc/self/ns/net``.
    """
    try:
        st = os.stat(namespace_path(name))
    except FileNotFoundError:
        return False
    return st.st_dev == os.stat("/proc/self/ns/net").st_dev


def list_namespaces(prefix: str = "") -> list[str]:
    """Named network namespaces whose name starts with ``prefix`` (as ``ip netns list``)."""
    return sorted(n for n in pyroute2_netns.listnetns() if n.startswith(prefix))


def ensure_namespace(name: str) -> None:
    """Create network namespace ``name`` unless it exists; repairs a half-made one."""
    if namespace_exists(name):
        return
    if os.path.lexists(namespace_path(name)):
        log.warning("namespace %s is half-made (nothing mounted); re-creating it", name)
        remove_namespace(name)
    pyroute2_netns.create(name)


def remove_namespace(name: str) -> None:
    """Unmount and delete namespace ``name``; nothing if it does not exist.

    The kernel frees the namespace (and any interface still in it) once no
    process holds it; a process left running inside keeps it alive unnamed,
    so stop those first.
    """
    if not os.path.lexists(namespace_path(name)):
        return
    with suppress(FileNotFoundError):  # removed concurrently
        pyroute2_netns.remove(name)


# An amphora's namespace: HAProxy may bind the VIP while it is on the peer
# (ip_nonlocal_bind); ARP requests are answered only for addresses of the
# interface asked (arp_ignore 1: a VIP held on lo during a handover is never
# claimed), and its own ARP requests name the interface's address, never the
# VIP (arp_announce 2: a retiring MASTER answering a straggler must not teach
# anyone its MAC for the VIP again).
AMPHORA_SYSCTLS = {"net.ipv4.ip_nonlocal_bind": "1", "net.ipv4.conf.all.arp_ignore": "1",
                   "net.ipv4.conf.all.arp_announce": "2"}

# A VRRP handover (:meth:`NamespacePlacement.forward_strays`): the packet mark and
# routing table id of packets sent on to the retiring MASTER, and the nftables table.
HANDOVER_MARK = 0x4C42
_HANDOVER_TABLE_NAME = "lbaas_handover"
_LOCAL_TABLE = 255


def _ensure_rule(ns: Any, **rule: int) -> None:
    try:
        ns.rule("add", **rule)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise


def _rules_at(ns: Any, priority: int) -> list[int]:
    """The tables of the IPv4 policy rules at ``priority``."""
    return [r.get_attr("FRA_TABLE") or r["table"] for r in ns.get_rules(family=socket.AF_INET)
            if (r.get_attr("FRA_PRIORITY") or 0) == priority]


def _delete_rule(ns: Any, **rule: int) -> None:
    with suppress(NetlinkError):
        ns.rule("del", **rule)


_libc_lock = threading.Lock()
_libc: ctypes.CDLL | None = None


def _loaded_libc() -> ctypes.CDLL:
    # Loaded in the parent: dlopen() after fork() in a threaded process can
    # deadlock on the loader's lock, so a preexec_fn must not be the first.
    global _libc
    with _libc_lock:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return _libc


def enter_namespace(name: str) -> Callable[[], None]:
    """A ``preexec_fn`` that moves the (child) process into namespace ``name``.

    Checked now, in the parent: raises :class:`PlacementError` if ``name``
    does not exist, rather than failing later in the child with
    ``SubprocessError: Exception occurred in preexec_fn``. The function it
    returns only opens the namespace file and calls ``setns(2)`` (through
    ``pyroute2.netns.setns`` without creating or forking), which is safe
    between ``fork`` and ``exec``.
    """
    if not namespace_exists(name):
        raise PlacementError(f"network namespace {name} does not exist")
    path = namespace_path(name)
    libc = _loaded_libc()

    def _enter() -> None:
        pyroute2_netns.setns(path, flags=0, libc=libc, fork=False)

    return _enter


def set_sysctls(namespace: str, values: dict[str, str]) -> None:
    """Write network sysctls (``{"net.ipv4.ip_nonlocal_bind": "1"}``) of ``namespace``.

    ``/proc/sys/net`` shows the network namespace of the thread that opens
    it, so a short-lived thread enters ``namespace`` (``setns(2)`` moves only
    the calling thread) and writes there. Raises :class:`PlacementError`.
    """
    for name in values:
        if not re.match(r"^net\.[a-z0-9_]+(\.[a-z0-9_-]+)+$", name):
            raise PlacementError(f"{name!r} is not a network sysctl")
    failure: list[BaseException] = []

    def write() -> None:
        try:
            pyroute2_netns.setns(namespace_path(namespace), flags=0, libc=_loaded_libc(),
                                 fork=False)
            for name, value in values.items():
                with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
                    f.write(value)
        except BaseException as e:  # handed to the caller's thread
            failure.append(e)

    if not namespace_exists(namespace):
        raise PlacementError(f"network namespace {namespace} does not exist")
    thread = threading.Thread(target=write, name=f"sysctl-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise PlacementError(f"setting {', '.join(values)} in {namespace} failed: "
                             f"{failure[0]}") from failure[0]


def popen_in_namespace(namespace: str, argv: Sequence[str],
                       **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` inside ``namespace``; ``popen_kwargs`` go to :class:`subprocess.Popen`.

    Raises :class:`PlacementError` if the namespace does not exist, and
    ``TypeError`` if ``preexec_fn`` is given (this helper owns it).
    """
    if "preexec_fn" in popen_kwargs:
        raise TypeError("popen_in_namespace sets preexec_fn itself")
    return subprocess.Popen(list(argv), preexec_fn=enter_namespace(namespace), **popen_kwargs)


def run_in_namespace(namespace: str, argv: Sequence[str], *, timeout: float | None = 30.0,
                     check: bool = False, **popen_kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside ``namespace`` to completion, like :func:`subprocess.run`.

    ``timeout`` in seconds (the child is killed and ``TimeoutExpired``
    raised); ``check`` raises ``CalledProcessError`` on a non-zero exit;
    ``capture_output=True``/``text=True`` etc. are passed through.
    """
    if "preexec_fn" in popen_kwargs:
        raise TypeError("run_in_namespace sets preexec_fn itself")
    return subprocess.run(list(argv), preexec_fn=enter_namespace(namespace), timeout=timeout,
                          check=check, **popen_kwargs)


# --------------------------------------------------------------------------
# Links


@contextmanager
def _netlink(namespace: str | None = None) -> Iterator[Any]:
    """An ``IPRoute`` socket in the host's namespace or in ``namespace`` (never creating it)."""
    with (IPRoute() if namespace is None else IPRoute(netns=namespace, flags=0)) as ipr:
        yield ipr


def _lookup(ipr: Any, ifname: str) -> Any | None:
    """The RTM_NEWLINK message of ``ifname``, or None."""
    idx = ipr.link_lookup(ifname=ifname)
    return ipr.link("get", index=idx[0])[0] if idx else None


def _delete_link(ipr: Any, index: int) -> bool:
    """Delete link ``index``; False if it was already gone (a veth dies with its peer)."""
    try:
        ipr.link("del", index=index)
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def ensure_bridge(subnet: SubnetPlan) -> int:
    """Make ``subnet``'s bridge exist, with its fixed MAC, the gateway address/prefix, up.

    Idempotent; returns the bridge's ifindex. Raises :class:`PlacementError`
    if an interface of that name belongs to another subnet (a clash of the
    shortened names).
    """
    name = subnet.bridge
    with _netlink() as ipr:
        link = _lookup(ipr, name)
        if link is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", address=bridge_mac(subnet.subnet_id))
            except NetlinkError as e:
                if e.code != errno.EEXIST:  # another thread made it meanwhile
                    raise
            link = _lookup(ipr, name)
            if link is None:
                raise PlacementError(f"bridge {name} vanished while being created")
            ipr.link("set", index=link["index"], ifalias=_BRIDGE_ALIAS + subnet.subnet_id)
        else:
            if link.get("IFLA_LINKINFO") is None or \
                    link.get("IFLA_LINKINFO").get("IFLA_INFO_KIND") != "bridge":
                raise PlacementError(f"interface {name} exists and is not a bridge")
            alias = link.get("IFLA_IFALIAS")
            if alias and alias != _BRIDGE_ALIAS + subnet.subnet_id:
                raise PlacementError(f"bridge {name} belongs to another subnet ({alias!r}); "
                                     f"cannot use it for subnet {subnet.subnet_id}")
        index = int(link["index"])
        have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
        if (str(subnet.gateway), subnet.network.prefixlen) not in have:
            try:
                ipr.addr("add", index=index, address=str(subnet.gateway),
                         prefixlen=subnet.network.prefixlen)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
        ipr.link("set", index=index, state="up")
        return index


def bridge_ports(name: str) -> list[str]:
    """Names of the interfaces enslaved to bridge ``name`` (empty if it does not exist)."""
    with _netlink() as ipr:
        link = _lookup(ipr, name)
        if link is None:
            return []
        return [p.get("IFLA_IFNAME") for p in ipr.link("dump", master=link["index"])]


def delete_bridge(name: str, *, only_if_unused: bool = True) -> bool:
    """Delete bridge ``name``; with ``only_if_unused``, only when it has no ports left.

    Returns True if it was deleted (False: absent, or still in use).
    """
    with _netlink() as ipr:
        link = _lookup(ipr, name)
        if link is None:
            return False
        if only_if_unused and list(ipr.link("dump", master=link["index"])):
            return False
        return _delete_link(ipr, link["index"])


def flush_neighbour(ifname: str, address: str) -> bool:
    """Forget the host's neighbour (ARP) entry for ``address`` on ``ifname``.

    Returns True if there was one. The next packet to ``address`` asks anew,
    and the rebuilt namespace answers with its new MAC.
    """
    with _netlink() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            return False
        try:
            ipr.neigh("del", dst=address, ifindex=idx[0])
        except NetlinkError as e:
            if e.code in (errno.ENOENT, errno.ESRCH):
                return False
            raise
        return True


def link_address(ifname: str, namespace: str | None = None) -> str | None:
    """The MAC of ``ifname`` (in ``namespace``, or the host's), or None if absent."""
    with _netlink(namespace) as ipr:
        link = _lookup(ipr, ifname)
        return None if link is None else str(link.get("IFLA_ADDRESS"))


@contextmanager
def _kernel_errors(what: str) -> Iterator[None]:
    """Turn the kernel's refusals (netlink, mount/setns) into a :class:`PlacementError`."""
    try:
        yield
    except PlacementError:
        raise
    except (NetlinkError, OSError) as e:
        raise PlacementError(f"{what} failed: {e}") from e


# --------------------------------------------------------------------------
# The placement


class NamespacePlacement:
    """The ``namespace`` :class:`~lbaas.dataplane.placement.Placement` (root only).

    ``arping`` is the iputils-arping binary for gratuitous ARPs (if it is not
    installed, :meth:`announce` logs a warning and only flushes the host's
    neighbour entry); ``garp_count`` is how many it sends, one a second, as
    neutron's ``send_arp_for_ha`` (3) did.

    Thread-safe across load balancers; the caller serialises the calls for
    one load balancer (one operation in flight per load balancer).
    """

    name = "namespace"

    def __init__(self, arping: str = "arping", garp_count: int = 3) -> None:
        if garp_count < 1:
            raise ValueError("garp_count must be at least 1")
        self._arping = shutil.which(arping)
        self._garp_count = garp_count
        self._lock = threading.Lock()
        self._bridge_locks: dict[str, threading.Lock] = {}
        self._garps: dict[str, subprocess.Popen[bytes]] = {}

    def _bridge_lock(self, bridge: str) -> threading.Lock:
        # Serialises "create/attach to bridge" against "delete bridge if
        # unused" on one subnet, so teardown of the last load balancer cannot
        # delete the bridge between prepare's ensure_bridge and its attach.
        with self._lock:
            return self._bridge_locks.setdefault(bridge, threading.Lock())

    # -- Placement protocol --------------------------------------------------

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Refuse with ``UnsupportedOption`` what :meth:`prepare` would refuse
        (IPv6 or additional VIPs, a subnet without gateway, a VIP outside it; for
        ACTIVE_STANDBY, amphorae without one MASTER and one BACKUP on distinct
        addresses of the VIP's subnet)."""
        try:
            if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
                active_standby_plans(lb)
            else:
                PortPlan.of(lb)
        except PlacementError as e:
            raise UnsupportedOption(e.reason) from None

    def namespace(self, lb_id: str, amphora_id: str | None = None) -> str | None:
        """``qlbaas-<lb_id>``, or ``amphora-<amphora_id>``: where HAProxy runs."""
        if amphora_id is not None:
            return amphora_namespace_name(amphora_id)
        return namespace_name(lb_id)

    def preexec(self, lb_id: str, amphora_id: str | None = None) -> Callable[[], None] | None:
        """A ``preexec_fn`` entering :meth:`namespace`; see :func:`enter_namespace`.

        Call after :meth:`prepare`; raises :class:`PlacementError` if the
        namespace does not exist.
        """
        return enter_namespace(self.namespace(lb_id, amphora_id) or "")

    def interface(self, lb_id: str, amphora_id: str | None = None) -> str:
        """The interface on the VIP's subnet inside :meth:`namespace` (keepalived's)."""
        return veth_names(amphora_id if amphora_id is not None else lb_id).namespace

    def prepare(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Plumb ``lb``'s VIP, or ``amphora``'s port: bridge, namespace, veth, address, route.

        For an amphora the veth holds its ``vrrp_ip`` (the VIP comes and goes
        with keepalived), and the namespace gets :data:`AMPHORA_SYSCTLS`.

        Idempotent and convergent: re-run after a crash at any step (a
        half-made namespace, a veth whose peer is gone, a port off the
        bridge or down) it repairs what is missing and keeps what is right,
        so a healthy namespace keeps its MAC. Raises :class:`PlacementError`
        for a VIP it cannot realise (see :meth:`PortPlan.of`) or when the
        kernel refuses a step.
        """
        plan = PortPlan.of(lb, amphora)
        with (_kernel_errors(f"plumbing {plan.namespace}"),
              self._bridge_lock(plan.subnet.bridge)):
            bridge = ensure_bridge(plan.subnet)
            ensure_namespace(plan.namespace)
            if plan.amphora_id is not None:
                set_sysctls(plan.namespace, AMPHORA_SYSCTLS)
            with _netlink() as ipr, _netlink(plan.namespace) as ns:
                self._ensure_veth(plan, ipr, ns, bridge)
                self._configure_inside(plan, ns)
        log.info("namespace %s: %s/%d on %s via %s", plan.namespace, plan.address,
                 plan.subnet.network.prefixlen, plan.subnet.bridge, plan.subnet.gateway)

    def announce(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Make neighbours learn the current MAC of the VIP (or of ``amphora``'s
        ``vrrp_ip``: its peer sends VRRP adverts there); call after HAProxy started.

        Flushes the host's neighbour entry for the address on the bridge
        (done when this returns) and starts ``arping -U -c <garp_count>``
        inside the namespace, which sends the first gratuitous ARP at once and
        the rest a second apart; this does not wait for it (a thread reaps it,
        and :meth:`teardown` stops it). Raises :class:`PlacementError` if the
        namespace does not exist or the kernel refuses.
        """
        plan = PortPlan.of(lb, amphora)
        with _kernel_errors(f"announcing {plan.address}"):
            self._announce(plan)

    def _announce(self, plan: PortPlan) -> None:
        flush_neighbour(plan.subnet.bridge, str(plan.address))
        if self._arping is None:
            log.warning("arping (iputils-arping) not found: no gratuitous ARP for %s; "
                        "other neighbours may keep an old MAC for up to a minute", plan.address)
            return
        argv = [self._arping, "-q", "-U", "-c", str(self._garp_count), "-I", plan.veth.namespace,
                str(plan.address)]
        self._stop_garp(plan.namespace)
        proc = popen_in_namespace(plan.namespace, argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with self._lock:
            self._garps[plan.namespace] = proc
        threading.Thread(target=self._reap_garp, args=(plan.namespace, proc, argv),
                         name=f"garp-{plan.namespace}", daemon=True).start()

    def hold_vip(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """Keep accepting the VIP's packets in ``amphora`` without claiming the VIP.

        Adds the VIP to the namespace's ``lo`` before its keepalived gives
        the VIP up: clients that still send to this amphora's MAC (until the
        peer's gratuitous ARP reaches them) are served here, and since the
        namespace answers ARP only for addresses of the interface asked
        (``arp_ignore = 1``), nobody learns this MAC for the VIP again. For a
        rebuild of a MASTER that loses no connection; :meth:`teardown` ends it.
        """
        plan = PortPlan.of(lb, amphora)
        with _kernel_errors(f"holding {plan.vips} in {plan.namespace}"), \
                _netlink(plan.namespace) as ns:
            lo = ns.link_lookup(ifname="lo")[0]
            for vip in plan.vips:
                try:
                    ns.addr("add", index=lo, address=str(vip), prefixlen=32)
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise

    def forward_strays(self, lb: LoadBalancerSpec, amphora: AmphoraSpec, to: str) -> None:
        """While a MASTER hands the VIP over to ``amphora``: send the VIP's TCP packets of
        connections ``amphora`` never opened on to ``to`` (the MASTER's ``vrrp_ip``).

        When the peer's gratuitous ARP reaches a client, the next packets of
        a request the old MASTER is serving (its ACKs, the rest of its
        request, its FIN) arrive here; this HAProxy does not know the
        connection and the kernel would answer with a reset. For the
        handover they are routed to the old MASTER instead, which still
        accepts the VIP (:meth:`hold_vip`) and answers the client directly:
        in ``amphora``'s namespace, an nftables rule (table
        ``lbaas_handover``) marks VIP packets that are not a SYN and start no
        connection its conntrack knows, a policy rule sends marked packets
        to a routing table whose default route is ``to`` (the ``local``
        table moved after it), forwarding is on and ICMP redirects off (the
        client must keep sending to the VIP, not learn the old MASTER).
        :meth:`stop_forwarding` undoes it. Raises :class:`PlacementError`
        (nft missing or refused, a netlink error).
        """
        plan = PortPlan.of(lb, amphora)
        nft = shutil.which("nft")
        if nft is None:
            raise PlacementError("nft (Debian package nftables) is not installed")
        vips = ", ".join(str(v) for v in plan.vips)
        ruleset = (f"table ip {_HANDOVER_TABLE_NAME} {{\n"
                   "  chain prerouting {\n"
                   "    type filter hook prerouting priority mangle; policy accept;\n"
                   f"    ip daddr {{ {vips} }} tcp flags & syn != syn "
                   f"ct state {{ new, invalid }} meta mark set {HANDOVER_MARK:#x}\n"
                   "  }\n}\n")
        set_sysctls(plan.namespace, {
            "net.ipv4.conf.all.send_redirects": "0",
            f"net.ipv4.conf.{plan.veth.namespace}.send_redirects": "0",
            "net.ipv4.conf.all.forwarding": "1"})
        with _kernel_errors(f"routing strays to {to} in {plan.namespace}"), \
                _netlink(plan.namespace) as ns:
            link = ns.link_lookup(ifname=plan.veth.namespace)[0]
            ns.route("replace", dst="0.0.0.0/0", gateway=to, oif=link,
                     table=HANDOVER_MARK)
            _ensure_rule(ns, fwmark=HANDOVER_MARK, table=HANDOVER_MARK, priority=100)
            _ensure_rule(ns, table=_LOCAL_TABLE, priority=200)
            if _LOCAL_TABLE in _rules_at(ns, 0):  # (a priority of 0 matches the first one)
                _delete_rule(ns, table=_LOCAL_TABLE, priority=0)
        done = subprocess.run([nft, "-f", "-"], input=ruleset, capture_output=True, text=True,
                              preexec_fn=enter_namespace(plan.namespace), timeout=10,
                              check=False)
        if done.returncode != 0:
            raise PlacementError(f"nft refused the handover rule in {plan.namespace}: "
                                 f"{done.stderr.strip()}")

    def stop_forwarding(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """Undo :meth:`forward_strays` in ``amphora``'s namespace (idempotent)."""
        plan = PortPlan.of(lb, amphora)
        if not namespace_exists(plan.namespace):
            return
        nft = shutil.which("nft")
        if nft is not None:
            subprocess.run([nft, "delete", "table", "ip", _HANDOVER_TABLE_NAME],
                           capture_output=True, preexec_fn=enter_namespace(plan.namespace),
                           timeout=10, check=False)
        with _kernel_errors(f"ending the handover in {plan.namespace}"), \
                _netlink(plan.namespace) as ns:
            # The local table stays at priority 200: first all the same once this goes.
            _delete_rule(ns, fwmark=HANDOVER_MARK, table=HANDOVER_MARK, priority=100)
            with suppress(NetlinkError):
                ns.route("del", dst="0.0.0.0/0", table=HANDOVER_MARK)
        set_sysctls(plan.namespace, {"net.ipv4.conf.all.forwarding": "0"})

    def broken(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> str | None:
        """Why ``amphora``'s plumbing cannot carry traffic (its namespace or its interface
        is gone), or None. Cheap: one stat and one netlink lookup."""
        plan = PortPlan.of(lb, amphora)
        if not namespace_exists(plan.namespace):
            return f"its network namespace {plan.namespace} is gone"
        try:
            with _netlink(plan.namespace) as ns:
                link = _lookup(ns, plan.veth.namespace)
        except (NetlinkError, OSError) as e:
            return f"its network namespace {plan.namespace} cannot be read: {e}"
        if link is None:
            return f"its interface {plan.veth.namespace} in {plan.namespace} is gone"
        return None

    def teardown(self, lb_id: str, amphora_id: str | None = None) -> None:
        """Remove :meth:`namespace`, both veth ends, and the bridge if nothing else uses it.

        Idempotent. Stop HAProxy first: a process still inside keeps the
        namespace alive after its name is gone (a warning is logged).
        Raises :class:`PlacementError` if the kernel refuses a step.
        """
        ns = self.namespace(lb_id, amphora_id) or ""
        owner = _AMPHORA_ALIAS + amphora_id if amphora_id is not None else _VETH_ALIAS + lb_id
        self._stop_garp(ns)
        with _kernel_errors(f"removing {ns}"):
            self._teardown(veth_names(amphora_id or lb_id), owner, ns)
        log.info("namespace %s removed", ns)

    def _teardown(self, veth: VethNames, owner: str, ns: str) -> None:
        bridge: str | None = None
        with _netlink() as ipr:
            host_end = _lookup(ipr, veth.host)
            if host_end is not None:
                self._check_owner(host_end, owner)
                master = host_end.get("IFLA_MASTER")
                if master:
                    br = ipr.link("get", index=master)[0]
                    bridge = br.get("IFLA_IFNAME")
                # Deleting one end deletes the pair, synchronously; the
                # namespace's own clean-up would do it later, in a workqueue.
                _delete_link(ipr, host_end["index"])
        if namespace_exists(ns):
            # A script its keepalived started (the state FIFO's reader, a check)
            # may take a moment to end after keepalived.
            left = pyroute2_netns.ns_pids().get(ns, [])
            for _ in range(10):
                if not left:
                    break
                time.sleep(0.1)
                left = pyroute2_netns.ns_pids().get(ns, [])
            if left:
                log.warning("namespace %s still holds processes %s; it lives on unnamed", ns, left)
        remove_namespace(ns)
        if bridge is not None:
            with self._bridge_lock(bridge):
                if delete_bridge(bridge, only_if_unused=True):
                    log.info("bridge %s deleted: no ports left", bridge)

    # -- steps ---------------------------------------------------------------

    @staticmethod
    def _check_owner(link: Any, owner: str) -> None:
        alias = link.get("IFLA_IFALIAS")
        if alias and alias != owner:
            raise PlacementError(f"interface {link.get('IFLA_IFNAME')} belongs to another load "
                                 f"balancer or amphora ({alias!r}); cannot use it for "
                                 f"{owner.split('=', 1)[-1]}")

    def _ensure_veth(self, plan: PortPlan, ipr: Any, ns: Any, bridge: int) -> None:
        """The veth pair: host end on the bridge and up, peer inside the namespace.

        ``ipr`` and ``ns`` are netlink sockets in the host's namespace and in
        the load balancer's.
        """
        veth = plan.veth
        host_end = _lookup(ipr, veth.host)
        if host_end is not None:
            self._check_owner(host_end, plan.alias)
            peer = _lookup(ns, veth.namespace)
            # ifindexes are per namespace; the two ends of a pair point at each other.
            paired = (peer is not None and peer.get("IFLA_LINK") == host_end["index"]
                      and host_end.get("IFLA_LINK") == peer["index"])
            if not paired:
                # Half-made: the namespace was re-created under it, or the
                # peer went elsewhere. Start the pair over.
                log.warning("veth %s has no peer in %s; re-creating it", veth.host, plan.namespace)
                _delete_link(ipr, host_end["index"])
                host_end = None
        if host_end is None:
            stray = _lookup(ns, veth.namespace)
            if stray is not None:
                _delete_link(ns, stray["index"])
            # The peer is created directly inside the namespace, so a crash
            # cannot leave it behind in the host's namespace.
            ipr.link("add", ifname=veth.host, kind="veth",
                     peer={"ifname": veth.namespace, "net_ns_fd": plan.namespace})
            host_end = _lookup(ipr, veth.host)
            if host_end is None:
                raise PlacementError(f"veth {veth.host} vanished while being created")
        ipr.link("set", index=host_end["index"], master=bridge, state="up", ifalias=plan.alias)

    @staticmethod
    def _configure_inside(plan: PortPlan, ns: Any) -> None:
        """Inside the namespace: lo up, the address (and nothing else but an amphora's
        VIPs as keepalived puts them) on the veth, default route."""
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
        link = _lookup(ns, plan.veth.namespace)
        if link is None:
            raise PlacementError(f"{plan.veth.namespace} missing in {plan.namespace}")
        index = link["index"]
        ns.link("set", index=index, state="up")
        want = (str(plan.address), plan.subnet.network.prefixlen)
        keep = {(str(vip), 32) for vip in plan.vips}
        present = False
        for a in ns.get_addr(index=index, family=socket.AF_INET):
            have = (a.get("IFA_LOCAL") or a.get("IFA_ADDRESS"), a["prefixlen"])
            if have == want:
                present = True
            elif have not in keep:  # an address never changes; others are from another life
                ns.addr("del", index=index, address=have[0], prefixlen=have[1])
        if not present:
            ns.addr("add", index=index, address=want[0], prefixlen=want[1])
        ns.route("replace", dst="0.0.0.0/0", gateway=str(plan.subnet.gateway), oif=index)

    # -- gratuitous ARP processes --------------------------------------------

    def _reap_garp(self, key: str, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        try:
            _, err = proc.communicate(timeout=self._garp_count + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        with self._lock:
            if self._garps.get(key) is proc:
                del self._garps[key]
        # -15/-9: stopped by teardown or a newer announce.
        if proc.returncode not in (0, -15, -9):
            log.warning("%s exited %s: %s", " ".join(argv), proc.returncode,
                        err.decode(errors="replace").strip())

    def _stop_garp(self, key: str) -> None:
        with self._lock:
            proc = self._garps.pop(key, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
