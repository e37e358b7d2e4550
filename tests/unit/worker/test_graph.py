"""Database rows -> spec: members read as rows give the spec the ORM objects give."""

from __future__ import annotations

import dataclasses

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from lbaas.common import constants as c
from lbaas.db import models as m
from lbaas.network.local import LocalNetwork
from lbaas.worker import graph

NETWORK = LocalNetwork("127.1.0.0/16", ("127.1.0.1", "127.1.255.254"))


def pool_of(sessions: sessionmaker[Session], members: int) -> tuple[str, str]:
    """(load balancer id, pool id): a pool of ``members`` varied members."""
    with sessions() as session, session.begin():
        lb = m.LoadBalancer(id=m.new_id(), project_id="p", vip_address="127.1.0.9")
        pool = m.Pool(id=m.new_id(), project_id="p", protocol="HTTP",
                      lb_algorithm="ROUND_ROBIN", load_balancer=lb)
        session.add_all([lb, pool])
        for i in range(members):
            session.add(m.Member(id=m.new_id(), project_id="p", pool=pool,
                                 address=f"127.3.0.{i + 1}", protocol_port=80 + i,
                                 weight=i % 3, backup=i == 1, admin_state_up=i != 2,
                                 monitor_address="127.4.0.1" if i == 3 else None,
                                 monitor_port=8080 if i == 3 else None,
                                 subnet_id="s1" if i == 4 else None))
        return lb.id, pool.id


def test_members_read_as_rows_give_the_spec_of_the_orm_members(
        sessions: sessionmaker[Session]) -> None:
    lb_id, _ = pool_of(sessions, 6)
    with sessions() as session:
        lb = graph.load_graph(session, lb_id)
        assert lb is not None
        from_orm = graph.build_spec(lb)
        from_rows = graph.spec_of(session, lb, NETWORK)
        members = from_orm.pools[0].members
        assert [mb.address for mb in members] == [f"127.3.0.{i + 1}" for i in range(6)]
        assert members[1].backup and not members[2].admin_state_up
        assert (members[3].monitor_address, members[3].monitor_port) == ("127.4.0.1", 8080)
        assert members[4].subnet_id == "s1" and members[5].weight == 2
        assert from_rows.pools == from_orm.pools
        assert all(type(mb.backup) is bool and type(mb.admin_state_up) is bool
                   for mb in from_rows.pools[0].members)


def test_a_changed_member_gets_a_new_spec_and_one_being_deleted_none(
        sessions: sessionmaker[Session]) -> None:
    lb_id, pool_id = pool_of(sessions, 3)

    def members() -> tuple[graph.s.MemberSpec, ...]:
        with sessions() as session:
            lb = graph.load_graph(session, lb_id, members="none")
            assert lb is not None
            return graph.spec_of(session, lb, NETWORK).pools[0].members

    before = members()
    with sessions() as session, session.begin():
        pool = session.get(m.Pool, pool_id)
        assert pool is not None
        pool.members[0].weight = 7
        pool.members[2].provisioning_status = c.PENDING_DELETE
    after = members()
    assert after[0] == dataclasses.replace(before[0], weight=7)
    assert after[1] is before[1]  # unchanged: built once (cached by its row)
    assert len(after) == 2


def test_a_new_row_reads_its_tags_without_asking_the_database(
        sessions: sessionmaker[Session]) -> None:
    """The API's response reads a new member's tags after the commit: no query (which
    would open a transaction, and on SQLite take the write lock the worker waits for)."""
    _, pool_id = pool_of(sessions, 0)
    statements: list[str] = []
    with sessions() as session:
        pool = session.get(m.Pool, pool_id)
        member = m.Member(id=m.new_id(), project_id="p", address="127.3.1.1",
                          protocol_port=80)
        member.tags = []
        member.pool = pool
        session.add(member)
        session.commit()
        assert "_tags" not in inspect(member).unloaded
        event.listen(session.get_bind(), "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        assert member.tags == []
    assert statements == []


def test_the_graph_of_a_change_is_read_in_four_queries(
        sessions: sessionmaker[Session]) -> None:
    """Load balancer with its VRRP group and amphorae, listeners with their L7 policies,
    the policies' rules, pools with their health monitors: four SELECTs (members read
    apart, as rows; nine before)."""
    lb_id, pool_id = pool_of(sessions, 2)
    with sessions() as session, session.begin():
        lb = session.get(m.LoadBalancer, lb_id)
        pool = session.get(m.Pool, pool_id)
        assert lb is not None and pool is not None
        listener = m.Listener(id=m.new_id(), project_id="p", protocol="HTTP",
                              protocol_port=80, load_balancer=lb, default_pool=pool)
        session.add_all([
            listener,
            m.L7Policy(id=m.new_id(), project_id="p", listener=listener, action="REJECT",
                       position=1),
            m.HealthMonitor(id=m.new_id(), project_id="p", pool=pool, type="TCP", delay=1,
                            timeout=1, max_retries=1, max_retries_down=1),
            m.Amphora(id=m.new_id(), load_balancer=lb, role=c.AMPHORA_ROLE_STANDALONE,
                      status=c.AMPHORA_ALLOCATED)])
    statements: list[str] = []
    with sessions() as session:
        event.listen(session.get_bind(), "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        lb = graph.load_graph(session, lb_id, members="none")
        assert lb is not None
        assert [len(li.l7policies) for li in lb.listeners] == [1]
        assert [p.health_monitor is not None for p in lb.pools] == [True]
        assert len(lb.amphorae) == 1 and lb.vrrp_group is None
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4


def test_a_member_change_spec_is_built_from_the_pool_without_a_query(
        sessions: sessionmaker[Session]) -> None:
    """What the API's provider check of a member change shows the provider: the listeners
    using the pool (as default pool or through an L7 policy), each with the pool as its
    default pool, and the pool with just the changed members; from what the handler
    loaded with the pool (POOL_OF_A_CHANGE), no query."""
    from lbaas.api.routes.member import POOL_OF_A_CHANGE

    lb_id, pool_id = pool_of(sessions, 3)
    with sessions() as session, session.begin():
        lb = session.get(m.LoadBalancer, lb_id)
        pool = session.get(m.Pool, pool_id)
        assert lb is not None and pool is not None
        other = m.Pool(id=m.new_id(), project_id="p", protocol="HTTP",
                       lb_algorithm="ROUND_ROBIN", load_balancer=lb)
        by_default = m.Listener(id=m.new_id(), project_id="p", protocol="HTTP",
                                protocol_port=80, load_balancer=lb, default_pool=pool,
                                timeout_member_connect=1234)
        by_policy = m.Listener(id=m.new_id(), project_id="p", protocol="TCP",
                               protocol_port=81, load_balancer=lb, default_pool=other)
        unrelated = m.Listener(id=m.new_id(), project_id="p", protocol="HTTP",
                               protocol_port=82, load_balancer=lb, default_pool=other)
        session.add_all([other, by_default, by_policy, unrelated,
                         m.L7Policy(id=m.new_id(), project_id="p", listener=by_policy,
                                    action="REDIRECT_TO_POOL", redirect_pool=pool, position=1),
                         m.HealthMonitor(id=m.new_id(), project_id="p", pool=pool, type="TCP",
                                         delay=1, timeout=1, max_retries=1,
                                         max_retries_down=1)])
        ids = {"default": by_default.id, "policy": by_policy.id}
        member_id = next(mb.id for mb in pool.members if mb.address == "127.3.0.1")
    statements: list[str] = []
    with sessions() as session:
        pool = session.get(m.Pool, pool_id, options=POOL_OF_A_CHANGE)
        member = session.get(m.Member, member_id)
        assert pool is not None and member is not None
        event.listen(session.get_bind(), "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        spec = graph.member_change_spec(pool, [member])
    assert statements == []
    assert spec.id == lb_id and spec.vip.address == "127.1.0.9"
    assert [p.id for p in spec.pools] == [pool_id]
    assert [mb.address for mb in spec.pools[0].members] == ["127.3.0.1"]
    assert spec.pools[0].health_monitor is not None
    assert sorted(li.id for li in spec.listeners) == sorted(ids.values())
    assert all(li.default_pool_id == pool_id and li.l7policies == () for li in spec.listeners)
    assert {li.id: li.timeout_member_connect for li in spec.listeners}[ids["default"]] == 1234
    assert spec.amphorae == () and spec.vrrp is None
