"""What Keystone authentication costs a request: p50 of a load balancer show.

Starts a real Keystone (``lbaas.testing.keystone``) and two real
``lbaas serve`` processes on loopback (noop provider): one with
``auth_strategy = keystone`` (keystonemiddleware's auth_token in front, its
in-process token cache), one with ``noauth``. Each gets one load balancer;
then ``GET /v2/lbaas/loadbalancers/{id}`` is timed on both, interleaved, with
a token already validated once (so every timed request is a cache hit, as a
client reusing its token sees). The noauth figure is the baseline.

Prints one line per figure: name, value, unit[, ratio to the baseline].
Usage: .venv/bin/python bench/auth.py [--samples 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lbaas.testing.keystone import Keystone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.serve import Serve

PATH = "/v2/lbaas/loadbalancers"


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keystone = Keystone(root / "keystone")
        keystone.start()
        servers = {
            "keystone": Serve(root / "ks-state", config="[api_settings]\nauth_strategy = "
                              "keystone\n" + keystone.authtoken_config()),
            "noauth": Serve(root / "noauth-state"),
        }
        try:
            for serve in servers.values():
                serve.start()
            headers = {"keystone": {"X-Auth-Token": keystone.token("lb-one-member")},
                       "noauth": {}}
            clients = {k: httpx.Client(base_url=s.url, headers=headers[k], timeout=30)
                       for k, s in servers.items()}
            urls = {}
            for k, c in clients.items():
                r = c.post(PATH, json={"loadbalancer": {"name": "bench"}})
                assert r.status_code == 201, r.text
                urls[k] = f"{PATH}/{r.json()['loadbalancer']['id']}"
                for _ in range(20):  # warm up: the first request validates the token
                    assert c.get(urls[k]).status_code == 200
            samples: dict[str, list[float]] = {k: [] for k in clients}
            for _ in range(args.samples):
                for k, c in clients.items():
                    t0 = time.perf_counter()
                    r = c.get(urls[k])
                    samples[k].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
            for c in clients.values():
                c.close()
        finally:
            for serve in servers.values():
                serve.stop()
            keystone.stop()
    base = statistics.median(samples["noauth"])
    print(f"show_loadbalancer_noauth_p50 {base:.2f} ms")
    print(f"show_loadbalancer_noauth_p95 {_p(samples['noauth'], 95):.2f} ms")
    ks50 = statistics.median(samples["keystone"])
    print(f"show_loadbalancer_keystone_cached_token_p50 {ks50:.2f} ms ratio={ks50 / base:.2f}")
    print(f"show_loadbalancer_keystone_cached_token_p95 {_p(samples['keystone'], 95):.2f} ms")
    print(f"keystone_auth_overhead_p50 {ks50 - base:.2f} ms")


if __name__ == "__main__":
    main()
