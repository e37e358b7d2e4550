"""Counter accumulation across HAProxy workers (lbaas.health.stats)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lbaas.dataplane.runtime import LoadBalancerStats, StatRow, WorkerStats
from lbaas.health import stats as s


def fe(listener: str, bin_: int, bout: int, stot: int, ereq: int = 0, scur: int = 0) -> StatRow:
    return StatRow(proxy=listener, name="FRONTEND", type="frontend", status="OPEN", scur=scur,
                   stot=stot, bin=bin_, bout=bout, ereq=ereq)


def srv(backend: str, member: str, bin_: int, bout: int, stot: int, scur: int = 0) -> StatRow:
    return StatRow(proxy=backend, name=member, type="server", status="UP", scur=scur,
                   stot=stot, bin=bin_, bout=bout)


def test_readings() -> None:
    assert s.listener_reading(fe("l1", 10, 20, 3, ereq=1)) == (10, 20, 3, 1)
    assert s.listener_reading(StatRow(proxy="l1", name="FRONTEND", type="frontend",
                                      status="OPEN")) == (0, 0, 0, 0)
    assert s.member_reading(srv("p1:l1", "m1", 5, 6, 7)) == (5, 6, 7)


def test_a_new_worker_adds_its_whole_reading() -> None:
    assert s.accumulate((100, 100), {}, {"1@1": (10, 20)}) == ((110, 120), {"1@1": (10, 20)})


def test_a_known_worker_adds_its_growth() -> None:
    assert s.accumulate((100, 100), {"1@1": (10, 20)}, {"1@1": (15, 20)}) == \
        ((105, 100), {"1@1": (15, 20)})


def test_the_same_reading_twice_adds_nothing() -> None:
    # A restarted control plane, or a second manager, re-reading what is stored.
    totals, kept = s.accumulate((5, 5), {}, {"1@1": (3, 4)})
    assert s.accumulate(totals, kept, {"1@1": (3, 4)}) == (totals, kept)


def test_a_lower_value_from_the_same_worker_is_stale() -> None:
    # e.g. the pre-reload snapshot of a worker read live afterwards.
    assert s.accumulate((50, 50), {"1@1": (30, 40)}, {"1@1": (20, 45)}) == \
        ((50, 55), {"1@1": (30, 45)})


def test_workers_not_reported_are_forgotten() -> None:
    assert s.accumulate((0,), {"1@1": (5,), "2@2": (7,)}, {"2@2": (9,)}) == ((2,), {"2@2": (9,)})


def test_a_malformed_stored_reading_counts_as_new() -> None:
    assert s.accumulate((0, 0), {"1@1": (5,)}, {"1@1": (1, 2)}) == ((1, 2), {"1@1": (1, 2)})


def test_reload_sequence_loses_nothing() -> None:
    totals: tuple[int, ...] = (0,)
    last: dict[str, tuple[int, ...]] = {}
    for now in ({"w1": (10,)},  # W1 serves
                {"w1": (25,)},
                {"w2": (3,), "w1": (30,)},  # reload: W2 new, W1's snapshot at 30
                {"w2": (8,), "w1": (34,)},  # W1 still finishes a connection (live, 34)
                {"w2": (12,), "w1": (30,)},  # W1 gone: only its snapshot is left (stale)
                {"w2": (12,)}):  # the snapshot aged out
        totals, last = s.accumulate(totals, last, now)
    assert totals == (34 + 12,)


def test_restart_after_a_crash_counts_the_new_worker_from_zero() -> None:
    totals, last = s.accumulate((0,), {}, {"w1": (10,)})
    totals, last = s.accumulate(totals, last, {"w3": (4,)})  # w1 crashed: w3 started at 0
    assert totals == (14,) and last == {"w3": (4,)}


# A worker's counter grows monotonically; a poll sees the current worker, the
# snapshots taken when earlier workers were retired, and sometimes an old worker
# live (still finishing connections, above its snapshot). If every worker's final
# value is seen at least once, the total is the sum of the final values.
@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=6), min_size=1,
                max_size=5),
       st.randoms(use_true_random=False))
def test_property_totals_equal_the_sum_of_each_workers_final_counter(
        growth: list[list[int]], rnd: random.Random) -> None:
    totals: tuple[int, ...] = (0,)
    last: dict[str, tuple[int, ...]] = {}
    finals: dict[str, int] = {}
    snapshots: dict[str, int] = {}
    for n, steps in enumerate(growth):  # workers one after the other (reloads)
        worker, value = f"{n}@{n}", 0
        for step in steps:
            value += step
            now = {w: (v,) for w, v in snapshots.items()}
            now[worker] = (value,)
            if rnd.random() < 0.3 and snapshots:
                old = rnd.choice(sorted(snapshots))
                finals[old] += rnd.randint(0, 50)
                now[old] = (finals[old],)
            totals, last = s.accumulate(totals, last, now)
        finals[worker] = value
        snapshots[worker] = value  # retired by the next reload, last value kept
        if len(snapshots) > 3:  # the agent keeps a few
            del snapshots[min(snapshots, key=lambda w: int(w.split("@")[0]))]
    assert totals == (sum(finals.values()),)


def test_collect_groups_by_object_and_worker() -> None:
    stats = LoadBalancerStats(
        lb_id="lb1", running=True, worker="2@20",
        rows=(fe("l1", 100, 200, 5, ereq=1, scur=2),
              StatRow(proxy="p1:l1", name="BACKEND", type="backend", status="UP", bin=999),
              srv("p1:l1", "m1", 10, 20, 3, scur=1), srv("p1:l2", "m1", 1, 2, 1, scur=1),
              fe("l2", 1, 2, 1)),
        others=(WorkerStats(worker="1@10", live=True,
                            rows=(fe("l1", 50, 60, 7, scur=3), srv("p1:l1", "m1", 5, 5, 5))),
                WorkerStats(worker="1@10", live=False, rows=(fe("l1", 40, 70, 6),)),
                WorkerStats(worker="0@5", live=False, rows=(fe("l1", 9, 9, 9, scur=4),))))
    obs = s.collect(stats)
    l1 = obs.listeners["l1"]
    assert l1.readings == {"2@20": (100, 200, 5, 1), "1@10": (50, 70, 7, 0),
                           "0@5": (9, 9, 9, 0)}
    assert l1.active == 2 + 3  # live workers only
    assert obs.listeners["l2"].readings == {"2@20": (1, 2, 1, 0)}
    m1 = obs.members["m1"]
    assert m1.readings == {"2@20": (11, 22, 4), "1@10": (5, 5, 5)}  # summed over backends
    assert m1.active == 2


def test_collect_of_a_fresh_haproxy() -> None:
    obs = s.collect(LoadBalancerStats(lb_id="lb1", running=True, worker="1@1",
                                      rows=(fe("l1", 0, 0, 0),)))
    assert obs.listeners["l1"] == s.Observed(readings={"1@1": (0, 0, 0, 0)}, active=0)
    assert obs.members == {}


def test_all_zero_readings_are_not_kept() -> None:
    # Idle objects need no stored reading: an unknown worker counts from zero anyway.
    assert s.accumulate((7, 7), {}, {"1@1": (0, 0)}) == ((7, 7), {})
    assert s.accumulate((7, 7), {}, {"1@1": (0, 3)}) == ((7, 10), {"1@1": (0, 3)})
