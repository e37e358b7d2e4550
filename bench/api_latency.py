"""API latency with 1,000 load balancers in the database (noop provider).

Starts a real ``lbaas serve`` (SQLite by default; ``--database-url`` for
PostgreSQL), creates N load balancers through the API, then times
``GET /v2/lbaas/loadbalancers`` (all N in one page) and single creates.
The baseline is ``GET /healthcheck`` on the same server in the same run.

Prints one line per figure: name, value, unit[, ratio to the baseline].
Usage: .venv/bin/python bench/api_latency.py [--count 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.serve import Serve


def _timed(fn: object, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def _p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] if len(samples) > 1 else samples[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = ("--database-url", args.database_url) if args.database_url else ()
        serve = Serve(Path(tmp) / "state", extra=extra)
        serve.start()
        try:
            with httpx.Client(base_url=serve.url, timeout=60) as c:
                def create() -> None:
                    r = c.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {"name": "b"}})
                    assert r.status_code == 201, r.text

                create_ms = _timed(create, args.count)
                body = c.get("/v2/lbaas/loadbalancers").json()
                assert len(body["loadbalancers"]) == args.count, len(body["loadbalancers"])
                base = _timed(lambda: c.get("/healthcheck"), args.samples)
                listing = _timed(lambda: c.get("/v2/lbaas/loadbalancers"), args.samples)
                show_id = body["loadbalancers"][0]["id"]
                show = _timed(lambda: c.get(f"/v2/lbaas/loadbalancers/{show_id}"), args.samples)
        finally:
            serve.stop()
    b50 = statistics.median(base)
    print(f"baseline_get_healthcheck_p50 {b50:.2f} ms")
    for name, s in (("list_loadbalancers_{n}", listing), ("show_loadbalancer", show),
                    ("create_loadbalancer", create_ms)):
        label = name.format(n=args.count)
        print(f"{label}_p50 {statistics.median(s):.2f} ms ratio={statistics.median(s) / b50:.1f}")
        print(f"{label}_p95 {_p(s, 95):.2f} ms")


if __name__ == "__main__":
    main()
