"""No HAProxy outlives the test that started it: a failed teardown, or a killed run.

Orphaned HAProxy masters were found running from deleted ``lbt-`` state
directories after interrupted runs. :mod:`tests.support.state_dirs` stops
them by PID, found from the directory alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.dataplane.haproxy import process_alive
from tests.functional.dataplane.conftest import HAPROXY, free_port
from tests.support.specs import http_lb
from tests.support.state_dirs import REPO, make_state_dir, processes_in, remove_state_dir


def _wait_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.05)


def test_a_teardown_that_failed_leaves_nothing_running() -> None:
    base = make_state_dir()
    am = Amphorae(AmphoraSettings(base_path=base / "lb", haproxy_cmd=HAPROXY))
    result = am.apply(http_lb("lb1", free_port(), ()))
    pids = [result.master_pid, *result.worker_pids]
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert sorted(processes_in(base)) == sorted(pids)
        # Amphorae.delete never ran (the test's teardown failed before it).
        assert sorted(remove_state_dir(base)) == sorted(pids)
        _wait_gone(pids)
        assert not base.exists()
        assert bystander.poll() is None  # not in the directory: left alone
    finally:
        bystander.kill()
        bystander.wait()


CHILD = textwrap.dedent("""
    import json, sys, time
    from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
    from tests.support.specs import http_lb
    from tests.support.state_dirs import make_state_dir
    base = make_state_dir()
    am = Amphorae(AmphoraSettings(base_path=base / "lb", haproxy_cmd=sys.argv[1]))
    r = am.apply(http_lb("lb1", int(sys.argv[2]), ()))
    print(json.dumps({"base": str(base), "pids": [r.master_pid, *r.worker_pids]}), flush=True)
    time.sleep(120)
""")


def test_a_killed_test_process_leaves_nothing_running() -> None:
    """SIGKILL: no teardown runs; the process's reaper stops its HAProxy by PID."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, HAPROXY, str(free_port())],
                             cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        base, pids = Path(started["base"]), started["pids"]
        assert all(process_alive(pid) for pid in pids)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    _wait_gone(pids)
    deadline = time.monotonic() + 5
    while base.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not base.exists()
