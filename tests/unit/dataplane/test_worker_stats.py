"""Worker identity and ``show info;show stat`` answers (runtime.py, for counters across reloads)."""

from __future__ import annotations

import json

import pytest

from lbaas.dataplane import runtime
from lbaas.dataplane.errors import RuntimeApiError

INFO = ("Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 7374\nUptime_sec: 3\n"
        "Start_time_sec: 1795324443\nTainted: 0\n\n")
STAT = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,status,weight,"
        "type\nl1,FRONTEND,,,1,2,9979,5,100,200,0,0,3,OPEN,,0\n"
        "p1:l1,m1,0,0,1,1,,5,100,200,,0,,UP,1,2\n\n")


def test_worker_identity() -> None:
    assert runtime.worker_identity({"Pid": "7", "Start_time_sec": "99"}) == "7@99"
    with pytest.raises(RuntimeApiError):
        runtime.worker_identity({"Pid": "7"})


def test_parse_info_stat() -> None:
    worker, rows = runtime.parse_info_stat(INFO + STAT)
    assert worker == "7374@1795324443"
    fe, m1 = rows
    assert (fe.type, fe.listener_id, fe.scur, fe.stot, fe.bin, fe.bout, fe.ereq) == \
        ("frontend", "l1", 1, 5, 100, 200, 3)
    assert (m1.type, m1.member_id, m1.pool_id, m1.weight, m1.status) == \
        ("server", "m1", "p1", 1, "UP")


@pytest.mark.parametrize("answer", [INFO, STAT, "Unknown command\n",
                                    INFO.replace("Pid: 7374\n", "") + STAT])
def test_parse_info_stat_refuses_other_answers(answer: str) -> None:
    with pytest.raises(RuntimeApiError):
        runtime.parse_info_stat(answer)


def test_parse_stat_refuses_a_header_without_names() -> None:
    with pytest.raises(RuntimeApiError):
        runtime.parse_stat("# a,b,c\n1,2,3\n")


def test_stats_report_is_json_friendly() -> None:
    _, rows = runtime.parse_info_stat(INFO + STAT)
    stats = runtime.LoadBalancerStats(
        lb_id="lb1", running=True, rows=rows, worker="2@2",
        others=(runtime.WorkerStats(worker="1@1", live=False, rows=rows[:1]),))
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["worker"] == "2@2" and data["error"] is None
    assert data["others"][0]["worker"] == "1@1" and not data["others"][0]["live"]
    assert runtime.StatRow(**data["others"][0]["rows"][0]) == rows[0]
