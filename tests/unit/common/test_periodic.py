"""lbaas.common.periodic: a call repeated in a thread, failures logged, stopped on demand."""

from __future__ import annotations

import threading
import time

import pytest

from lbaas.common.periodic import Periodic


def test_calls_repeat_after_a_failure_and_stop_waits_for_the_call_in_progress(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []
    third = threading.Event()

    def call() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 3:
            third.set()
            time.sleep(0.2)  # stop() must wait for this one

    periodic = Periodic(call, 0.01, "test-periodic", "the test call")
    periodic.start()
    assert third.wait(5)
    periodic.stop()
    stopped = len(calls)
    assert stopped == 3
    time.sleep(0.05)
    assert len(calls) == stopped  # no call after stop()
    assert "the test call failed" in caplog.text and "boom" in caplog.text


def test_the_first_call_waits_an_interval_unless_at_once() -> None:
    calls: list[float] = []
    periodic = Periodic(lambda: calls.append(time.monotonic()), 0.3, "test-periodic", "call")
    started = time.monotonic()
    periodic.start(at_once=False)
    time.sleep(0.1)
    assert calls == []
    periodic.stop()  # stopped during the first wait: never called
    assert calls == []
    periodic.start()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.005)
    periodic.stop()
    assert calls and calls[0] - started < 5
