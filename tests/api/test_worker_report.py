"""A wait for the worker that fails says why (tests.api.base.worker_report).

An API test that waits for the worker in vain (``Api.wait_idle``) fails with
the load balancers still PENDING_*, the reconciler's in-flight set, queue,
held claims and threads, and the stack of every thread: the next occurrence
of a stuck worker explains itself.
"""

from __future__ import annotations

import threading

import pytest

from lbaas.dataplane.spec import LoadBalancerSpec
from tests.api.base import Api, HeldNoopDriver, held


class EnteredDriver(HeldNoopDriver):
    """A held noop driver that tells when an apply has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    def apply(self, lb: LoadBalancerSpec) -> None:
        self.entered.set()
        super().apply(lb)


@pytest.fixture
def noop() -> EnteredDriver:
    return EnteredDriver()


def test_a_worker_that_does_not_settle_says_why(api: Api, noop: EnteredDriver) -> None:
    with held(api):
        lb = api.create_lb(wait=False)
        assert noop.entered.wait(10)  # the change runs (claimed), held inside the apply
        with pytest.raises(AssertionError) as failed:
            api.wait_idle(timeout=0.1)
    report = str(failed.value)
    assert report.startswith("worker did not settle in 0.1 s")
    assert f"('{lb['id']}', 'PENDING_CREATE', 'noop'" in report
    assert f"in flight: ['{lb['id']}']; queued: 0; claims held: ['{lb['id']}']" in report
    assert "lbaas-dispatcher alive" in report and "lbaas-worker-3 alive" in report
    assert "objects tracked by the garbage collector: " in report
    assert "in apply\n    self.open.wait(10)" in report  # where the worker thread waits
    assert api.lb_status(lb["id"]) == "ACTIVE"  # settled once let go


def test_the_state_of_an_idle_worker(api: Api) -> None:
    state = api.service.reconciler.state()
    assert (state.in_flight, state.queued, state.claims_held, state.stopping) == \
        ((), 0, (), False)
    assert [(name, alive) for name, alive, _ in state.threads] == \
        [("lbaas-dispatcher", True)] + [(f"lbaas-worker-{i}", True) for i in range(4)]
