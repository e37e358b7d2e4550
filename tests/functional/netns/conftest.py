"""Fixtures for the namespace placement tests: root only, and nothing left behind.

Every test here builds on its own subnet 198.18.<n>.0/24 (RFC 2544's range,
routed nowhere on this host) with a distinct ``n``, so that the tests can
run in parallel with each other and with other suites. The ``net`` fixture
(:class:`~tests.functional.netns.base.Net`) removes all a test made and
checks that no namespace, veth, bridge or process of it remains.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator

import pytest

from lbaas.dataplane import netns
from tests.functional.netns.base import Net, TrackedPlacement
from tests.support.netns_hosts import TEST_NAMESPACE_PREFIX


@functools.cache
def _unavailable() -> str | None:
    """Why these tests cannot run here, or None. Probed once per session."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, veths and bridges"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces"
    probe = f"{TEST_NAMESPACE_PREFIX}probe-{os.getpid()}"
    try:  # root in a container may still lack CAP_SYS_ADMIN
        netns.ensure_namespace(probe)
    except OSError as e:
        return f"cannot create a network namespace with pyroute2: {e}"
    finally:
        netns.remove_namespace(probe)
    return None


@pytest.fixture(autouse=True)
def _root_only() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def placement() -> TrackedPlacement:
    return TrackedPlacement()


@pytest.fixture
def net(placement: TrackedPlacement) -> Iterator[Net]:
    net = Net(placement)
    try:
        yield net
    finally:
        net.close()
    assert net.leftovers() == []


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str, float, str], None]:
    """Print one figure as ``name value unit`` (shown even under ``-q``)."""

    def emit(name: str, value: float, unit: str) -> None:
        with capsys.disabled():
            print(f"\n{name} {value:.1f} {unit}")

    return emit
