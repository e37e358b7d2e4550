"""The README's CLI example, run as written against a real ``lbaas serve`` (haproxy provider).

Only the addresses change: the backend's 127.0.0.21 and the VIP pool become
addresses of this test's own (127.204.<r>.0/24), so that it meets nothing else
running here.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import Serve

REPO = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy not installed"),
              pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")]


def backend_pids(address: str) -> list[int]:
    """Live ``lbaas.testing.backend`` processes serving on ``address``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"lbaas.testing.backend" in cmd and address.encode() in cmd:
            pids.append(int(entry.name))
    return pids


def readme_block(heading: str) -> str:
    """The first fenced code block after ``heading`` in the README."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(f"\n{heading}\n"):]
    m = re.search(r"\n```\n(.*?)\n```\n", after, re.S)
    assert m, heading
    return m.group(1)


@pytest.fixture
def serve() -> Iterator[tuple[Serve, int]]:
    octet = random.randrange(256)
    tmp = Path(tempfile.mkdtemp(prefix="lbr-", dir="/tmp"))
    s = Serve(tmp / "state", provider="haproxy",
              config=f"[networking]\ndefault_subnet_cidr = 127.204.{octet}.0/24\n"
                     f"default_subnet_pool_start = 127.204.{octet}.100\n"
                     f"default_subnet_pool_end = 127.204.{octet}.199\n")
    try:
        s.start()
        yield s, octet
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_cli_example_balances_to_the_backend_it_starts(
        serve: tuple[Serve, int]) -> None:
    s, octet = serve
    script = readme_block("## Using the CLI")
    assert "python -m lbaas.testing.backend" in script and "127.0.0.21" in script
    script = script.replace("127.0.0.21", f"127.204.{octet}.21")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(LBAAS_URL=s.url, PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    try:
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:  # a failed run leaves its backend: stop it by PID
        for pid in backend_pids(f"127.204.{octet}.21"):
            os.kill(pid, signal.SIGKILL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Welcome to web1" in proc.stdout, out
    assert '"operating_status": "ERROR"' not in out, out
    with s.client() as c:
        assert c.get("/loadbalancers").json()["loadbalancers"] == []
