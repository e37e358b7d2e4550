"""The agent's side of heartbeats: what it reports, and what a reply may delete."""

from __future__ import annotations

from pathlib import Path

from lbaas.agent.heartbeat import (
    HEARTBEAT,
    Heartbeat,
    Heartbeater,
    HeartbeatReply,
    Held,
    spec_digest,
    to_json,
)
from lbaas.agent.local import LocalAgent
from lbaas.dataplane import spec as specs
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings, ApplyResult
from lbaas.dataplane.runtime import LoadBalancerStats, StatRow
from tests.support.specs import http_lb, member


class PaperAmphorae(Amphorae):
    """Amphorae that write spec.json and run nothing (no HAProxy needed)."""

    def apply(self, lb: specs.LoadBalancerSpec) -> ApplyResult:
        f = self.files(lb.id)
        f.root.mkdir(parents=True, exist_ok=True)
        f.spec.write_text(specs.to_json(lb))
        return ApplyResult(lb_id=lb.id, action="started", master_pid=None)


def agent(tmp_path: Path) -> LocalAgent:
    return LocalAgent(PaperAmphorae(AmphoraSettings(base_path=tmp_path / "lb")))


IDENTITY = Heartbeat(host="h1", binary="lbaas-agent", availability_zone="az", port=9443)


def test_a_heartbeat_carries_what_the_agent_holds_and_a_resync_their_digests(
        tmp_path: Path) -> None:
    a = agent(tmp_path)
    lb = http_lb("lb1", 80, (member("m1", 8001),))
    a.apply(lb)
    orphan = tmp_path / "lb" / "lb2"
    orphan.mkdir()
    (orphan / "haproxy.cfg").write_text("")  # a directory without a spec
    sent: list[Heartbeat] = []

    def send(hb: Heartbeat) -> HeartbeatReply:
        sent.append(hb)
        return HeartbeatReply(agent_id="a1")

    beats = Heartbeater(a, IDENTITY, send, interval=60, with_stats=True, reconcile=True)
    beats.beat()
    beats.beat()
    first, second = sent
    assert first.resync and not second.resync
    assert first.load_balancers["lb1"].digest == spec_digest(lb)
    assert first.load_balancers["lb2"].digest is None
    assert second.load_balancers["lb1"].digest is None
    assert second.load_balancers["lb1"].stats == LoadBalancerStats(lb_id="lb1", running=False)
    assert beats.agent_id == "a1"


def test_a_failed_heartbeat_makes_the_next_one_ask_for_reconciliation(tmp_path: Path) -> None:
    replies: list[HeartbeatReply | Exception] = [HeartbeatReply(agent_id="a1"),
                                                 ConnectionError("down"),
                                                 HeartbeatReply(agent_id="a1")]
    asked: list[bool] = []

    def send(hb: Heartbeat) -> HeartbeatReply:
        asked.append(hb.resync)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    beats = Heartbeater(agent(tmp_path), IDENTITY, send, interval=60, reconcile=True)
    assert beats.beat() is not None and beats.beat() is None and beats.beat() is not None
    assert asked == [True, False, True]


def test_a_reply_deletes_only_what_was_not_applied_since_the_heartbeat_left(
        tmp_path: Path) -> None:
    a = agent(tmp_path)
    old, new = http_lb("old", 80, ()), http_lb("new", 81, ())
    a.apply(old)

    def send(hb: Heartbeat) -> HeartbeatReply:
        a.apply(new)  # placed here while the heartbeat was on its way
        return HeartbeatReply(agent_id="a1", delete=("old", "new"))

    Heartbeater(a, IDENTITY, send, interval=60).beat()
    assert set(a.held()) == {"new"}
    assert not (tmp_path / "lb" / "old").exists()


def test_heartbeats_travel_as_json() -> None:
    row = StatRow(proxy="l1", name="FRONTEND", type="frontend", status="OPEN", scur=1)
    hb = Heartbeat(host="h", binary="b", load_balancers={"lb": Held(
        stats=LoadBalancerStats(lb_id="lb", running=True, rows=(row,)), digest="d")})
    assert HEARTBEAT.validate_json(to_json(hb)) == hb


class CountingAmphorae(PaperAmphorae):
    """PaperAmphorae that count the reads of spec.json."""

    specs_read = 0

    def last_spec(self, lb_id: str, amphora_id: str | None = None,
                  ) -> specs.LoadBalancerSpec | None:
        self.specs_read += 1
        return super().last_spec(lb_id, amphora_id)


def test_a_heartbeat_without_resync_lists_what_is_held_without_reading_specs(
        tmp_path: Path) -> None:
    """The in-process agent's heartbeat (every 2 s, no stats, no digests): the ids of
    every load balancer held, an adopted one's spec.json not looked at."""
    PaperAmphorae(AmphoraSettings(base_path=tmp_path / "lb")).apply(http_lb("adopted", 80, ()))
    amphorae = CountingAmphorae(AmphoraSettings(base_path=tmp_path / "lb"))
    a = LocalAgent(amphorae)  # a new process: "adopted" is only a directory to it
    a.apply(http_lb("applied", 81, ()))
    sent: list[Heartbeat] = []

    def send(hb: Heartbeat) -> HeartbeatReply:
        sent.append(hb)
        return HeartbeatReply(agent_id="a1")

    Heartbeater(a, IDENTITY, send, interval=60).beat()
    hb, = sent
    assert hb.load_balancers == {"adopted": Held(), "applied": Held()}
    assert amphorae.specs_read == 0
