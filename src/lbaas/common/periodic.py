"""A call repeated every few seconds in a daemon thread, until stopped.

Heartbeats sent by an agent (:class:`~lbaas.agent.heartbeat.Heartbeater`)
and pulled by the control plane (:class:`~lbaas.worker.agents.AgentPoller`)
run this way: one call at a time, an exception of one call logged and the
next one on time, :meth:`Periodic.stop` waiting for a call in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)


class Periodic:
    """Calls ``call`` every ``interval`` seconds (measured from the end of the previous
    call) in a daemon thread named ``name``; ``what`` names it in logged failures."""

    def __init__(self, call: Callable[[], object], interval: float, name: str,
                 what: str) -> None:
        self.call = call
        self.interval = interval
        self.name = name
        self.what = what
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, at_once: bool = True) -> None:
        """Start the thread: the first call at once, or after ``interval`` seconds."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, args=(at_once,), name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop calling; waits up to ``timeout`` seconds for a call in progress."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, at_once: bool) -> None:
        if not at_once and self._stopping.wait(self.interval):
            return
        while True:
            try:
                self.call()
            except Exception:
                LOG.exception("%s failed", self.what)
            if self._stopping.wait(self.interval):
                return
