"""The test Keystone's catalog edits from several threads at once (tempest's
runs side by side register their endpoints together)."""

from __future__ import annotations

import threading
import uuid

from lbaas.testing.keystone import Keystone


def test_endpoints_added_at_once_share_one_service(keystone: Keystone) -> None:
    # A service type of this test alone: the run's other tests never see it.
    service_type = f"race-{uuid.uuid4().hex[:8]}"
    regions = [f"Race{service_type[5:]}{i}" for i in range(8)]
    start = threading.Barrier(len(regions))
    errors: list[BaseException] = []

    def add(region: str) -> None:
        start.wait()
        try:
            keystone.add_endpoint(service_type, f"http://127.0.0.1:9/{region}", region=region)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(r,)) for r in regions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with keystone._api() as api:
        services = api.get("/services", params={"type": service_type}).json()["services"]
        try:
            # Two services of one type: tempest reads the first one's endpoints only.
            assert len(services) == 1
            endpoints = api.get("/endpoints",
                                params={"service_id": services[0]["id"]}).json()["endpoints"]
            assert sorted(e["region_id"] for e in endpoints) == regions
        finally:
            for service in services:
                api.delete(f"/services/{service['id']}")  # its endpoints go with it
            for region in regions:
                api.delete(f"/regions/{region}")
