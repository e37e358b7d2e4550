"""Parsing HAProxy's runtime API answers (texts captured from HAProxy 2.6.12)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lbaas.dataplane import runtime
from lbaas.dataplane.errors import RuntimeApiError

SHOW_STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot\n"
    "listener1,FRONTEND,,,1,3,50000,12,1880,2640,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,1,0,2,,,,"
    "0,12,0,0,0,0,,1,3,12\n"
    "pool1:listener1,m1,0,0,0,1,,6,940,1320,,0,,0,0,0,0,UP,1,1,0,0,0,35,0,,1,3,1,,6,,2,0,,1,"
    "L7OK,200,1,0,6,0,0,0,0,,,,6\n"
    "pool1:listener1,m2,0,0,0,1,,6,940,1320,,0,,0,0,0,0,DOWN,2,1,0,3,1,4,4,,1,3,2,,6,,2,0,,1,"
    "L7STS,500,1,0,6,0,0,0,0,,,,6\n"
    "pool1:listener1,BACKEND,0,0,0,1,5000,12,1880,2640,0,0,,0,0,0,0,UP,1,1,0,,0,35,0,,1,3,0,,"
    "12,,1,0,,2,,,,0,12,0,0,0,0,,,,12\n"
)

SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
13094           master          3 [failed: 1]   0d00h20m33s     2.6.12-1+deb12u4
# workers
12106           worker          0               0d00h00m01s     2.6.12-1+deb12u4
# old workers
11469           worker          1               0d00h00m12s     2.6.12-1+deb12u4
# programs

"""


def test_parse_stat_rows_and_ids() -> None:
    rows = runtime.parse_stat(SHOW_STAT)
    stats = runtime.LoadBalancerStats(lb_id="lb1", running=True, rows=rows)
    fe, = stats.frontends
    assert (fe.listener_id, fe.scur, fe.stot, fe.bin, fe.bout, fe.status, fe.req_tot) == \
        ("listener1", 1, 12, 1880, 2640, "OPEN", 12)
    m1, m2 = stats.servers
    assert (m1.pool_id, m1.listener_id, m1.member_id, m1.status, m1.weight,
            m1.check_status) == ("pool1", "listener1", "m1", "UP", 1, "L7OK")
    assert (m2.status, m2.chkfail, m2.downtime, m2.lastchg) == ("DOWN", 3, 4, 4)
    be, = stats.backends
    assert (be.pool_id, be.slim, be.ereq) == ("pool1", 5000, None)
    assert stats.to_dict()["rows"][0]["proxy"] == "listener1"


def test_health_from_stats() -> None:
    stats = runtime.LoadBalancerStats(lb_id="lb1", running=True,
                                      rows=runtime.parse_stat(SHOW_STAT))
    health = runtime.health_from_stats(stats, 10, (11,))
    assert health.listeners == (("listener1", "OPEN"),)
    assert [(h.member_id, h.status, h.check_status) for h in health.servers] == \
        [("m1", "UP", "L7OK"), ("m2", "DOWN", "L7STS")]


def test_parse_proc() -> None:
    procs = runtime.parse_proc(SHOW_PROC)
    assert procs == runtime.ProcessList(master=13094, reloads=3, failed_reloads=1,
                                        workers=(12106,), old_workers=(11469,))


SHOW_SERVERS_STATE = (
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
    "3 pool1:listener1 1 m1 127.0.0.1 2 0 1 1 4 6 3 3 6 0 0 0 - 18081 - 0 0 - - 0\n"
    "3 pool1:listener1 2 m2 127.0.0.1 0 0 5 5 4 8 2 0 6 0 0 0 - 18082 - 0 0 - - 0\n"
    "3 pool1:listener1 3 m3 127.0.0.1 0 1 1 1 4 6 3 3 6 0 0 0 - 18083 - 0 0 - - 0\n"
    "3 pool1:listener1 4 m4 127.0.0.1 2 0 1 1 4 6 3 3 6 0 0 0 - 18084 - 0 0 - - 0\n"
)


def test_server_state_keeps_checked_servers_in_service() -> None:
    keep = {("pool1:listener1", "m1"), ("pool1:listener1", "m2"), ("pool1:listener1", "m3")}
    kept = runtime.server_state_to_keep(SHOW_SERVERS_STATE, keep).splitlines()
    assert kept[:2] == SHOW_SERVERS_STATE.splitlines()[:2]
    # m3 was in maintenance (admin state 1): the configuration decides; m4 is
    # not checked in the new configuration.
    assert [line.split()[3] for line in kept[2:]] == ["m1", "m2"]


@pytest.mark.parametrize("text", ["", "Unknown command.\n", "2\n# be_id be_name\n",
                                  "1\n# be_id srv_id\n3 1\n"])
def test_unexpected_server_state_answers_keep_nothing(text: str) -> None:
    assert runtime.server_state_to_keep(text, {("pool1:listener1", "m1")}) == \
        runtime.EMPTY_SERVER_STATE


def test_parse_info() -> None:
    info = runtime.parse_info("Name: HAProxy\nVersion: 2.6.12\nPid: 42\nUptime_sec: 7\n")
    assert info["Pid"] == "42" and info["Uptime_sec"] == "7"


@pytest.mark.parametrize("text", ["", "Unknown command\n", "garbage,only\n"])
def test_unexpected_answers_raise(text: str) -> None:
    with pytest.raises(RuntimeApiError):
        runtime.parse_stat(text)
    with pytest.raises(RuntimeApiError):
        runtime.parse_proc(text)


def test_send_refuses_multi_line_commands(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(RuntimeApiError, match="multi-line"):
        runtime.send(Path("/nonexistent.sock"), "show stat\nshutdown sessions")


def test_missing_socket_is_a_runtime_error() -> None:
    from pathlib import Path

    with pytest.raises(RuntimeApiError, match="did not answer"):
        runtime.send(Path("/nonexistent/stats.sock"), "show info")


def test_combine_readings_of_two_hosts_amphorae() -> None:
    """An ACTIVE_STANDBY pair on two agents: rows of the MASTER's, the other's counters
    among ``others``; one that runs without answering is the error of the whole."""
    rows = runtime.parse_stat(SHOW_STAT)
    old = runtime.WorkerStats(worker="7@1", live=False, rows=())
    backup = runtime.LoadBalancerStats(
        lb_id="lb", running=True, rows=rows, worker="11@5", others=(old,),
        amphorae=(runtime.AmphoraHealth(id="b", running=True, vrrp_state="BACKUP"),))
    master = runtime.LoadBalancerStats(
        lb_id="lb", running=True, rows=rows[:1], worker="12@6",
        amphorae=(runtime.AmphoraHealth(id="m", running=True, vrrp_state="MASTER"),))
    both = runtime.combine("lb", [backup, master])
    assert both.running and both.error is None
    assert (both.worker, both.rows) == ("12@6", rows[:1])
    assert [a.id for a in both.amphorae] == ["b", "m"]
    assert both.others == (runtime.WorkerStats(worker="11@5", live=True,
                                               rows=runtime.counter_rows(rows)), old)
    silent = runtime.LoadBalancerStats(lb_id="lb", running=True, error="timed out",
                                       amphorae=master.amphorae)
    assert runtime.combine("lb", [backup, silent]) == runtime.LoadBalancerStats(
        lb_id="lb", running=True, error="timed out", amphorae=backup.amphorae + master.amphorae)
    gone = runtime.LoadBalancerStats(lb_id="lb", running=False, error="no spec")
    assert runtime.combine("lb", [gone]) == gone


def test_parse_stat_quoted_fields_and_missing_columns() -> None:
    """A line holding a quoted field with commas is read as CSV; a column this HAProxy
    does not have reads as empty (None, or 0 for a counter)."""
    header = "# pxname,svname,status,scur,check_status,last_chk,stot,type\n"
    rows = runtime.parse_stat(header + 'p:l,m1,DOWN,2,L7STS,"HTTP 500, body",7,2\n'
                              "l,FRONTEND,OPEN,1,,,9,0\n"
                              "p:l,m2,UP\n")  # a short line: the rest empty
    m1, fe, m2 = rows
    assert (m1.status, m1.scur, m1.check_status, m1.stot, m1.type) == \
        ("DOWN", 2, "L7STS", 7, "server")
    assert (fe.type, fe.scur, fe.stot, fe.check_status, fe.req_tot, fe.bin) == \
        ("frontend", 1, 9, None, None, 0)
    assert (m2.name, m2.status, m2.scur, m2.type, m2.weight) == ("m2", "UP", 0, "?", None)


def _one_connection(path: Path, answer: Callable[[socket.socket], None]) -> threading.Thread:
    """A UNIX socket server at ``path`` that accepts one connection and runs ``answer``."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_send_reads_an_answer_in_pieces_until_the_socket_closes(tmp_path: Path) -> None:
    """An answer written in pieces, with pauses, and longer than one read (64 KiB)."""
    pieces = [b"# pxname,svname\n", b"a" * 70000 + b"\n", b"b,c\n"]
    release = threading.Event()

    def answer(conn: socket.socket) -> None:
        assert conn.recv(100) == b"show stat\n"
        for piece in pieces:
            conn.sendall(piece)
            release.wait(0.05)  # a pause: the reader must wait for the rest

    thread = _one_connection(tmp_path / "s.sock", answer)
    assert runtime.send(tmp_path / "s.sock", "show stat") == b"".join(pieces).decode()
    thread.join(5)


def test_send_gives_up_on_a_socket_that_does_not_answer(tmp_path: Path) -> None:
    """Blocking calls bounded in the kernel: a silent HAProxy is an error, not a hang."""
    done = threading.Event()
    thread = _one_connection(tmp_path / "s.sock", lambda conn: done.wait(30))
    with pytest.raises(RuntimeApiError, match="did not answer"):
        runtime.send(tmp_path / "s.sock", "show info", timeout=0.2)
    done.set()
    thread.join(5)


class CannedStats(runtime.StatsClient):
    """A stats socket whose answers are given by the test."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent.sock"))
        self.answer = ""

    def raw(self, command: str) -> str:
        assert command == "show info;show stat"
        return self.answer


def test_show_info_stat_reuses_the_rows_of_an_answer_with_nothing_new() -> None:
    """Only lastchg, downtime and rate moved: the last rows again, the same tuple (the
    health poll's quiet HAProxy builds nothing); without reuse, rows as answered."""
    info = "Name: HAProxy\nPid: 12106\nStart_time_sec: 1700000000\n"
    client = CannedStats()
    client.answer = info + SHOW_STAT
    worker, first = client.show_info_stat(reuse=True)
    assert (worker, first) == ("12106@1700000000", runtime.parse_stat(SHOW_STAT))
    later = SHOW_STAT.replace(",DOWN,2,1,0,3,1,4,4,", ",DOWN,2,1,0,3,1,9,9,")  # lastchg, downtime
    assert later != SHOW_STAT
    client.answer = info + later
    assert client.show_info_stat(reuse=True)[1] is first
    fresh = client.show_info_stat()[1]
    assert (fresh[2].lastchg, fresh[2].downtime) == (9, 9)
    assert client.show_info_stat(reuse=True)[1] is first
    traffic = later.replace("FRONTEND,,,1,3,50000,12,", "FRONTEND,,,1,3,50000,13,")  # stot
    client.answer = info + traffic
    moved = client.show_info_stat(reuse=True)[1]
    assert moved[0].stot == 13 and moved == runtime.parse_stat(traffic)
