"""Run a real ``lbaas serve`` process for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from lbaas.testing.keystone import Keystone


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """``lbaas serve`` on 127.0.0.1:<port> with its own state directory.

    ``config`` is the text of an INI file passed with ``--config-file``.
    """

    def __init__(self, state_dir: Path, config: str = "", provider: str = "noop",
                 port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.provider = provider
        self.config_path = state_dir.parent / f"lbaas-{self.port}.conf"
        self.config_path.write_text(config)
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until the API answers (a readiness wait: on this
        shared 2-core machine, under a load of 13, the imports alone took 9 s and a start
        over 20 s)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbaas", "serve", "--port", str(self.port), "--state-dir",
             str(self.state_dir), "--provider", self.provider, "--config-file",
             str(self.config_path), *self.extra],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lbaas serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthcheck", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()  # not left running by a fixture that never gets to its teardown
        raise RuntimeError(f"lbaas serve did not answer: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Stop if still running (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/v2/lbaas", headers=headers, timeout=10)


def keystone_serve(state_dir: Path, keystone: Keystone, services: Sequence[str]) -> Serve:
    """A started ``lbaas serve`` (noop provider) with ``auth_strategy = keystone``
    against ``keystone``, in its catalog as each of ``services`` (``load-balancer``,
    ``network``) in a region of its own, :func:`region_of`: xdist workers share the
    run's Keystone, and one region would let a worker's clients reach the other's
    lbaas. The caller stops it."""
    serve = Serve(state_dir, config="[api_settings]\nauth_strategy = keystone\n"
                                    + keystone.authtoken_config())
    serve.start()
    try:
        for service in services:
            keystone.add_endpoint(service, serve.url, region=region_of(serve))
    except BaseException:
        serve.stop()
        raise
    return serve


def region_of(serve: Serve) -> str:
    """The catalog region of a :func:`keystone_serve`."""
    return f"RegionLbaas{serve.port}"


def clouds_yaml(keystone: Keystone, serve: Serve, path: Path) -> Path:
    """``path``, written: the Keystone's clouds.yaml with every cloud in ``serve``'s
    region (:func:`region_of`)."""
    config = json.loads((keystone.dir / "clouds.yaml").read_text())
    for cloud in config["clouds"].values():
        cloud["region_name"] = region_of(serve)
    path.write_text(json.dumps(config))
    return path
