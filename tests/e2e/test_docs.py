"""``/docs`` renders the API's operations with no network: Swagger UI's assets come from
the package, not from a CDN.

A headless Chromium (Debian's ``chromium``, installed by ``scripts/setup --test``)
loads ``/docs`` from a real ``lbaas serve`` with every name but 127.0.0.1
unresolvable and every other address sent to a dead proxy on loopback, so
nothing leaves the host; the test reads the DOM after the page's scripts ran
(``--screenshot=FILE`` instead of ``--dump-dom`` shows the page).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import Serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                                 "(scripts/setup --test installs it)")]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("docs") / "state")
    s.start()
    yield s
    s.stop()


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Load ``url`` offline in a fresh headless Chromium; its stdout (``--dump-dom``: the DOM)."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}",
         # Offline: no name but 127.0.0.1 resolves, and any other address goes to a proxy
         # that is not there (loopback bypasses proxies).
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=20000",
         "--window-size=1280,2000", *extra, url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_docs_render_every_operation_offline(serve: Serve, tmp_path: Path) -> None:
    dom = chromium(f"{serve.url}/docs", tmp_path / "profile", "--dump-dom")
    paths = set(re.findall(r'data-path="([^"]+)"', dom))
    assert "/v2/lbaas/loadbalancers" in paths, dom[:3000]
    assert "/v2/lbaas/pools/{pool_id}/members" in paths, sorted(paths)
    operations = re.findall(r'class="opblock opblock-(get|post|put|delete)', dom)
    assert len(operations) >= 60, len(operations)
