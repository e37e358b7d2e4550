"""The tests' PostgreSQL: one cluster per run, shared by the xdist workers, gone with the run.

The test runs a small pytest session of its own (two xdist workers, the
suite's ``pg_cluster`` fixture), kills it as a timeout would, and looks at
what it leaves on the host. (A run that ends normally ends the same way: the
reaper sees the pytest process end.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import postgres

REPO = Path(__file__).resolve().parents[2]
INNER = '''
import json, os, time
from pathlib import Path


def _record(db):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["OUT"], worker).write_text(json.dumps(
        {"port": db.cluster.port, "database": db.name, "dir": str(db.cluster.dir)}))
    time.sleep(float(os.environ["HOLD"]))


def test_one(pg_cluster):
    _record(pg_cluster)


def test_two(pg_cluster):
    _record(pg_cluster)
'''

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")]


def _inner_run(tmp_path: Path, hold: float) -> tuple[subprocess.Popen[bytes], Path]:
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(OUT=str(out), HOLD=str(hold), LBAAS_TEST_POSTGRES="required")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-n", "2", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    return proc, out


def _seen(out: Path, timeout: float = 240.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while len(list(out.iterdir())) < 2:
        assert time.monotonic() < deadline, "the workers never got their databases"
        time.sleep(0.2)
    return [json.loads(f.read_text()) for f in sorted(out.iterdir())]


def _postmasters_in(directory: str) -> list[int]:
    return [pid for pid, program in postgres._processes_of(Path(directory))
            if program == "postgres"]


def _gone(directory: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while Path(directory).exists() or _postmasters_in(directory):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_one_cluster_per_run_a_database_per_worker_gone_when_the_run_is_killed(
        tmp_path: Path) -> None:
    proc, out = _inner_run(tmp_path, hold=300)
    try:
        seen = _seen(out)
        assert {s["dir"] for s in seen} == {seen[0]["dir"]}, seen  # one cluster
        assert {s["port"] for s in seen} == {seen[0]["port"]}, seen
        assert sorted(s["database"] for s in seen) == ["lbaas_gw0", "lbaas_gw1"], seen
        assert len(_postmasters_in(seen[0]["dir"])) == 1
        os.killpg(proc.pid, signal.SIGKILL)  # a timeout's kill: the run and its workers
        proc.wait(10)
        assert _gone(seen[0]["dir"]), "the cluster outlived a killed run"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
