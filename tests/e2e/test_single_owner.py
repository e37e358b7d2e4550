"""One ``lbaas serve`` per state directory and per database (issue 9, item 6).

Two processes on one state directory (or one database) used to start
without complaint and fight: load balancers in ERROR, two HAProxy masters
for one load balancer, orphans serving after a delete. The second process
now refuses to start, naming the first; the lock dies with its holder, so
after a crash (SIGKILL) a new process starts at once.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.serve import Serve


@pytest.fixture
def started() -> Iterator[list[Serve]]:
    serves: list[Serve] = []
    yield serves
    for s in serves:
        s.stop()


def _refused(second: Serve) -> str:
    with pytest.raises(RuntimeError, match="lbaas serve exited") as info:
        second.start()
    assert second.proc is not None and second.proc.returncode == 1
    return str(info.value)


def test_a_second_serve_on_one_state_directory_refuses_naming_the_first(
        tmp_path: Path, started: list[Serve]) -> None:
    first = Serve(tmp_path / "state")
    started.append(first)
    first.start()
    assert first.proc is not None
    second = Serve(tmp_path / "state")
    started.append(second)
    log = _refused(second)
    assert re.search(
        rf"Error: lbaas serve not starting: another lbaas holds state directory "
        rf"{re.escape(str(tmp_path / 'state'))}: lbaas pid {first.proc.pid} on "
        rf"{re.escape(socket.gethostname())}, API 127\.0\.0\.1:{first.port}, since ", log), log
    with first.client() as c:  # the first one is unharmed
        assert c.get("/loadbalancers").status_code == 200

    first.kill()  # a crash: the lock goes with the process
    again = Serve(tmp_path / "state")
    started.append(again)
    again.start()


def test_a_second_serve_on_one_sqlite_database_refuses(tmp_path: Path,
                                                        started: list[Serve]) -> None:
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    first = Serve(tmp_path / "a" / "state")
    started.append(first)
    first.start()
    database = tmp_path / "a" / "state" / "lbaas.sqlite"
    second = Serve(tmp_path / "b" / "state", extra=("--database-url", f"sqlite:///{database}"))
    started.append(second)
    log = _refused(second)
    assert f"another lbaas holds database {database}: lbaas pid " in log


def test_a_second_serve_on_one_postgresql_database_refuses(
        tmp_path: Path, started: list[Serve], pg_cluster: postgres.Database | None) -> None:
    if pg_cluster is None:
        pytest.skip("PostgreSQL not available")
    from tests.conftest import _empty

    _empty(pg_cluster.url)
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    first = Serve(tmp_path / "a" / "state", extra=("--database-url", pg_cluster.url))
    started.append(first)
    first.start()
    assert first.proc is not None
    second = Serve(tmp_path / "b" / "state", extra=("--database-url", pg_cluster.url))
    started.append(second)
    log = _refused(second)
    assert re.search(rf"another lbaas runs the data plane of database \S+ on 127\.0\.0\.1: "
                     rf"lbaas pid {first.proc.pid} on ", log), log
    first.terminate()
    assert os.path.exists(tmp_path / "a" / "state")
    second.start()  # once the first has stopped, the database is free
