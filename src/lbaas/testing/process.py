"""What the throwaway servers of the tests (Keystone, Barbican) share: a directory
holding ``info.json`` (port, pid, ...) and a log, a process started in the
background that stops with SIGTERM, and one server per test run behind a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on file ``path`` (created) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class BackgroundServer:
    """A server whose state lives in ``directory``: ``info.json`` (read back on
    construction) and ``<log_name>``."""

    log_name = "server.log"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.info_path = directory / "info.json"
        self.info: dict[str, Any] = {}
        if self.info_path.exists():
            self.info = json.loads(self.info_path.read_text())

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s); its files stay."""
        pid = self.info.get("pid")
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        self.info.pop("pid", None)
        self._save()

    def running(self) -> bool:
        """True if the recorded process is alive."""
        pid = self.info.get("pid")
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _log_tail(self) -> str:
        path = self.dir / self.log_name
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def _save(self) -> None:
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2))
        tmp.replace(self.info_path)
