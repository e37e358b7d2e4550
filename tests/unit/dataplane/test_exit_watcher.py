"""ExitWatcher: a watched process's exit is reported at once, by key, without polling."""

from __future__ import annotations

import queue
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.dataplane.haproxy import ExitWatcher


@pytest.fixture
def exits() -> Iterator[tuple[ExitWatcher, queue.Queue[str]]]:
    reported: queue.Queue[str] = queue.Queue()
    watcher = ExitWatcher(reported.put)
    yield watcher, reported
    watcher.close()


def _sleeper(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], cwd=cwd)


def test_an_exit_is_reported_at_once(exits: tuple[ExitWatcher, queue.Queue[str]],
                                     tmp_path: Path) -> None:
    watcher, reported = exits
    proc = _sleeper(tmp_path)
    try:
        assert watcher.watch("lb1", proc.pid, tmp_path)
        assert watcher.watch("lb1", proc.pid, tmp_path)  # again: one watch
        proc.kill()
        assert reported.get(timeout=5) == "lb1"  # the watcher has no periodic pass
        time.sleep(0.1)
        assert reported.empty()
    finally:
        proc.kill()
        proc.wait()


def test_unwatched_and_replaced_processes_are_not_reported(
        exits: tuple[ExitWatcher, queue.Queue[str]], tmp_path: Path) -> None:
    watcher, reported = exits
    first, second = _sleeper(tmp_path), _sleeper(tmp_path)
    try:
        assert watcher.watch("lb1", first.pid, tmp_path)
        assert watcher.watch("lb1", second.pid, tmp_path)  # replaces the first
        first.kill()
        first.wait()
        watcher.unwatch("lb1")
        second.kill()
        second.wait()
        time.sleep(0.2)
        assert reported.empty()
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_a_process_that_is_not_ours_or_gone_is_not_watched(
        exits: tuple[ExitWatcher, queue.Queue[str]], tmp_path: Path) -> None:
    watcher, reported = exits
    proc = _sleeper(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    try:
        assert not watcher.watch("lb1", proc.pid, other)  # another working directory
        proc.kill()
        proc.wait()
        assert not watcher.watch("lb1", proc.pid, tmp_path)  # gone
        time.sleep(0.1)
        assert reported.empty()
    finally:
        proc.kill()
        proc.wait()
