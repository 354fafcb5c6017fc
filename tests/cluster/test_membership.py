"""The membership engine on its own: merge rules, timeouts, refutation, registry, validation."""

from __future__ import annotations

import logging
import random

import pytest

from cinema.cluster import (
    MemberDown,
    MemberLeft,
    Membership,
    MemberSuspect,
    MemberUp,
    Node,
    NodeStatus,
)
from cinema.cluster.proto import gossip_pb2 as pb

WALL = 1_700_000_000_000


def engine(node_id: str, *, incarnation: int = WALL, timeout: float = 1.0) -> Membership:
    return Membership(
        node_id,
        f"mem://{node_id}",
        suspect_timeout=timeout,
        now=0.0,
        incarnation=incarnation,
        rng=random.Random(node_id),
        wall_clock=lambda: WALL,
    )


def exchange(a: Membership, b: Membership, now: float) -> None:
    """``a`` gossips to ``b`` and gets the reply, as one round trip."""
    for out in a.tick(now):
        if out.addr == b.addr:
            reply = b.receive(out.data, now)
            assert reply is not None
            assert a.receive(reply, now, reply=False) is None


def entry(
    node_id: str,
    *,
    status: int = pb.MEMBER_STATUS_UP,
    incarnation: int = WALL,
    heartbeat: int = 1,
    addr: str | None = None,
) -> pb.MemberState:
    return pb.MemberState(
        id=node_id,
        addr=addr or f"mem://{node_id}",
        status=status,  # type: ignore[arg-type]  # tests also send invalid raw values
        incarnation=incarnation,
        heartbeat=heartbeat,
    )


def gossip(*entries: pb.MemberState) -> bytes:
    return pb.Gossip(members=entries).SerializeToString()


def statuses(m: Membership, now: float = 0.0) -> dict[str, NodeStatus]:
    return {n.id: n.status for n in m.members(now)}


def test_members_include_self_and_added_peers() -> None:
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    assert a.members(0.0) == [Node("a", "mem://a"), Node("b", "mem://b")]
    assert a.drain_events() == [MemberUp(Node("b", "mem://b"))]


def test_exchange_teaches_both_sides() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.1)
    assert statuses(b) == {"a": NodeStatus.UP, "b": NodeStatus.UP}
    assert b.drain_events() == [MemberUp(Node("a", "mem://a"))]


def run(m: Membership, start: float, end: float, step: float = 0.1) -> dict[float, NodeStatus]:
    """Tick ``m`` every ``step`` from ``start`` to ``end`` (messages go nowhere); return the
    status of ``b`` after each tick."""
    seen: dict[float, NodeStatus] = {}
    for k in range(round((end - start) / step) + 1):
        t = round(start + k * step, 6)
        m.tick(t)
        status = m.status_of("b")
        assert status is not None
        seen[t] = status
    return seen


def first(seen: dict[float, NodeStatus], status: NodeStatus) -> float:
    return min(t for t, s in seen.items() if s is status)


def test_silence_makes_suspect_then_down_counted_from_last_news() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.5)  # last news of b at 0.5
    a.drain_events()
    seen = run(a, 0.6, 3.0)
    # silent for timeout / 2: probed (directly again, and through others if any) for another
    # timeout / 2, then suspected; alone to judge, Down one timeout later
    assert first(seen, NodeStatus.SUSPECT) == 1.5
    assert first(seen, NodeStatus.DOWN) == 2.5
    assert [type(e) for e in a.drain_events()] == [MemberSuspect, MemberDown]


def test_repeated_stale_entry_is_not_news() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.1)  # a knows b at b's current heartbeat
    stale = entry("b", heartbeat=b.heartbeat)
    seen: dict[float, NodeStatus] = {}
    for k in range(2, 12):
        t = round(k * 0.1, 6)
        # c keeps repeating what it heard long ago: not news, so b is still suspected on time
        a.receive(gossip(entry("c", heartbeat=k), stale), t, reply=False)
        seen.update(run(a, t, t))
    assert first(seen, NodeStatus.SUSPECT) == 1.1


def test_newer_heartbeat_relayed_by_others_is_news() -> None:
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    run(a, 0.1, 0.7)
    a.receive(gossip(entry("c"), entry("b", heartbeat=5)), 0.8, reply=False)
    assert NodeStatus.SUSPECT not in run(a, 0.8, 1.5).values()


def test_live_node_refutes_suspicion_with_higher_incarnation() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.1)
    run(a, 0.2, 1.2)
    assert a.status_of("b") is NodeStatus.SUSPECT
    before = b.incarnation
    exchange(a, b, 1.3)  # a's message tells b that a suspects it; b's reply refutes
    assert b.incarnation == before + 1
    assert a.status_of("b") is NodeStatus.UP


def test_accusation_on_older_news_is_not_adopted_and_the_accused_is_told() -> None:
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    a.receive(gossip(entry("c"), entry("b", heartbeat=3)), 0.1, reply=False)
    # c suspects b having heard heartbeat 1 only: a heard 3 since, so it keeps b Up
    a.receive(gossip(entry("c"), entry("b", status=pb.MEMBER_STATUS_SUSPECT)), 0.2, reply=False)
    assert a.status_of("b") is NodeStatus.UP
    # ... and its next message to b carries the accusation, so that b refutes it
    told = [o for o in a.tick(0.3) if o.addr == "mem://b"]
    assert told
    described = {e.id: e for e in pb.Gossip.FromString(told[0].data).members}
    assert described["b"].status == pb.MEMBER_STATUS_SUSPECT


def test_suspicion_beats_alive_at_same_heartbeat_and_only_the_member_refutes_it() -> None:
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    a.receive(gossip(entry("c"), entry("b", heartbeat=3)), 0.1, reply=False)
    suspect = entry("b", status=pb.MEMBER_STATUS_SUSPECT, heartbeat=3)
    a.receive(gossip(entry("c"), suspect), 0.2, reply=False)
    a.receive(gossip(entry("c"), entry("b", heartbeat=3)), 0.25, reply=False)
    assert a.status_of("b") is NodeStatus.SUSPECT
    # a later heartbeat heard second hand, within the silence a suspicion takes (10 rounds):
    # it may predate the suspicion, so it is no proof of life since
    a.receive(gossip(entry("c"), entry("b", heartbeat=9)), 0.3, reply=False)
    assert a.status_of("b") is NodeStatus.SUSPECT
    down = entry("b", status=pb.MEMBER_STATUS_DOWN, heartbeat=3)
    a.receive(gossip(entry("c"), down), 0.4, reply=False)
    assert a.status_of("b") is NodeStatus.DOWN
    # one produced a whole suspect_timeout of rounds after the accusation: b lives on
    a.receive(gossip(entry("c"), entry("b", heartbeat=14)), 0.5, reply=False)
    assert a.status_of("b") is NodeStatus.UP
    a.receive(gossip(entry("c"), entry("b", status=pb.MEMBER_STATUS_DOWN, heartbeat=14)), 0.6)
    assert a.status_of("b") is NodeStatus.DOWN
    a.receive(gossip(entry("c"), entry("b", incarnation=WALL + 1)), 0.7, reply=False)
    assert a.status_of("b") is NodeStatus.UP


def test_a_dead_members_last_heartbeat_heard_second_hand_does_not_clear_its_suspicion() -> None:
    # a suspects b on its own, having heard heartbeat 4 last; b's last message (heartbeat 5)
    # went to another node just before b died, and reaches a second hand only after a began to
    # suspect b. Only b itself could refute, so the suspicion runs its course.
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    a.add_member(Node("c", "mem://c"), 0.0)
    a.receive(gossip(entry("b", heartbeat=4)), 0.5, reply=False)
    seen: dict[float, NodeStatus] = {}
    for k in range(6, 80):
        t = round(k * 0.1, 6)
        a.tick(t)
        # c keeps talking to a, and its random entries carry b's last heartbeat it knows
        last = 4 if t < 1.8 else 5
        a.receive(gossip(entry("c", heartbeat=k), entry("b", heartbeat=last)), t, reply=False)
        status = a.status_of("b")
        assert status is not None
        seen[t] = status
    suspected = first(seen, NodeStatus.SUSPECT)
    assert suspected < 1.8
    assert NodeStatus.UP not in {s for t, s in seen.items() if t >= suspected}
    assert first(seen, NodeStatus.DOWN) <= suspected + 6 * 1.0
    # ... and its accusation now carries heartbeat 5, so that c, which heard 5, adopts it
    out = [o for o in a.tick(8.0) if o.addr == "mem://c"]
    described = {e.id: e for e in pb.Gossip.FromString(out[0].data).members}
    assert described["b"].heartbeat == 5
    assert described["b"].status != pb.MEMBER_STATUS_UP


def test_the_suspected_members_own_message_clears_its_suspicion() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.1)
    run(a, 0.2, 1.2)
    assert a.status_of("b") is NodeStatus.SUSPECT
    (hello,) = [o for o in b.tick(1.3) if o.addr == "mem://a"]  # b had not heard of it yet
    a.receive(hello.data, 1.3)
    assert a.status_of("b") is NodeStatus.UP


def test_restart_with_newer_incarnation_comes_back_up() -> None:
    a = engine("a")
    a.receive(gossip(entry("b")), 0.0)
    a.receive(gossip(entry("c"), entry("b", status=pb.MEMBER_STATUS_DOWN)), 0.1, reply=False)
    assert a.status_of("b") is NodeStatus.DOWN
    restarted = engine("b", incarnation=WALL + 5000)
    a.add_seeds(["mem://b"])
    reply = a.receive(restarted.tick(0.3)[0].data, 0.3) if restarted.members(0.3)[1:] else None
    assert reply is None  # b's new life knows nobody yet: it only has seeds to call
    restarted.add_seeds(["mem://a"])
    (hello,) = restarted.tick(0.4)
    answer = a.receive(hello.data, 0.4)
    assert answer is not None
    assert a.status_of("b") is NodeStatus.UP
    restarted.receive(answer, 0.4, reply=False)
    assert restarted.status_of("a") is NodeStatus.UP


def test_leave_marks_left_then_drops_from_view() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    exchange(a, b, 0.1)
    notices = b.leave(0.2)
    assert [n.addr for n in notices] == ["mem://a"]
    assert not notices[0].expects_reply
    assert a.receive(notices[0].data, 0.2, reply=False) is None
    assert a.status_of("b") is NodeStatus.LEFT
    assert any(isinstance(e, MemberLeft) for e in a.drain_events())
    assert "b" not in statuses(a, 0.2 + 1.0)


def test_registry_spreads_and_vanishes_when_node_goes_down() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    b.register_actor("kv", "KVStore")
    assert b.lookup_actor("kv") == ("b", "KVStore")
    exchange(a, b, 0.1)
    assert a.lookup_actor("kv") == ("b", "KVStore")
    assert a.actors() == {"kv": ("b", "KVStore")}
    run(a, 0.2, 1.2)  # suspect: still listed
    assert a.status_of("b") is NodeStatus.SUSPECT
    assert a.lookup_actor("kv") == ("b", "KVStore")
    run(a, 1.3, 2.2)  # down: gone
    assert a.status_of("b") is NodeStatus.DOWN
    assert a.lookup_actor("kv") is None


def test_unregister_spreads() -> None:
    a, b = engine("a"), engine("b")
    a.add_member(Node("b", "mem://b"), 0.0)
    b.register_actor("kv", "KVStore")
    exchange(a, b, 0.1)
    assert b.unregister_actor("kv")
    assert not b.unregister_actor("kv")
    exchange(a, b, 0.2)
    assert a.lookup_actor("kv") is None


def test_registry_conflict_resolves_the_same_everywhere() -> None:
    clock = {"ms": WALL}
    nodes = [
        Membership(
            i,
            f"mem://{i}",
            suspect_timeout=1.0,
            now=0.0,
            incarnation=WALL,
            rng=random.Random(i),
            wall_clock=lambda: clock["ms"],
        )
        for i in ("a", "b", "c")
    ]
    _, b, c = nodes
    c.register_actor("x", "Late")
    clock["ms"] -= 10  # b registered earlier by its wall clock
    b.register_actor("x", "Early")
    for n in nodes:
        for other in nodes:
            n.add_member(Node(other.id, other.addr), 0.0)
    for n in nodes:
        for other in nodes:
            if other is not n:
                exchange(n, other, 0.1)
    assert {n.lookup_actor("x") for n in nodes} == {("b", "Early")}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xff\xff", "not a gossip message"),
        (gossip(), "no members"),
        (gossip(entry("x", status=99)), "bad status"),
        (gossip(entry("x", status=0)), "bad status"),
        (gossip(entry("x", incarnation=2**63)), "absurd incarnation"),
        (gossip(*(entry(f"n{i}") for i in range(1100))), "more than"),
        (gossip(entry("a")), "claims to be this node"),
        (gossip(entry("")), "bad member id"),
        (gossip(entry("x", status=pb.MEMBER_STATUS_DOWN)), "describes itself"),
        (gossip(entry("x", addr="127.0.0.1:99999")), "unusable address"),
        (gossip(entry("x", addr="nocolon")), "unusable address"),
        (gossip(entry("x", addr="bogus://x")), "unusable address"),
        (gossip(entry("x", addr="mem://with space")), "unusable address"),
    ],
)
def test_gossip_with_a_bad_sender_is_rejected_and_changes_nothing(
    data: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = engine("a")
    a.add_member(Node("b", "mem://b"), 0.0)
    a.drain_events()
    before = (a.members(0.0), a.incarnation, a.actors())
    with caplog.at_level(logging.WARNING, logger="cinema.cluster"):
        assert a.receive(data, 0.1, peer="evil") is None
    assert (a.members(0.0), a.incarnation, a.actors()) == before
    assert a.drain_events() == []
    assert a.take_outgoing() == []
    assert any(reason in r.getMessage() and "evil" in r.getMessage() for r in caplog.records)


def actor_entry(node_id: str, at: int, name: str = "kv") -> pb.MemberState:
    e = entry(node_id)
    e.registry_version = 1
    e.actors.add(name=name, type_name="KV", registered_at_ms=at)
    return e


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry("y", status=99), "bad status"),
        (entry("y", incarnation=2**63), "absurd incarnation"),
        (entry("y", addr="127.0.0.1:99999"), "unusable address"),
        (entry("y", addr="nocolon"), "unusable address"),
        (entry("y", addr="bogus://x"), "unusable address"),
        (entry("x"), "listed twice"),
        (actor_entry("y", 0), "outside its incarnation"),
        (actor_entry("y", WALL + 10**9), "outside its incarnation"),
        (actor_entry("y", WALL, name="x" * 600), "bad actor entry"),
    ],
)
def test_a_bad_entry_is_dropped_alone(
    bad: pb.MemberState, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = engine("a")
    with caplog.at_level(logging.WARNING, logger="cinema.cluster"):
        reply = a.receive(gossip(entry("x"), bad, entry("z")), 0.1, peer="peer")
    assert reply is not None  # the message counts, without the bad entry
    assert set(statuses(a)) == {"a", "x", "z"}
    assert a.actors() == {}
    assert any(reason in r.getMessage() for r in caplog.records)


def test_warnings_about_bad_gossip_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    a = engine("a")
    with caplog.at_level(logging.WARNING, logger="cinema.cluster"):
        for _ in range(1000):
            a.receive(b"\xff\xff", 0.1, peer="flood")
    assert 1 <= len(caplog.records) <= 10


def test_hearing_itself_in_a_later_life_refutes_above_it() -> None:
    a = engine("a")
    a.receive(gossip(entry("x"), entry("a", incarnation=WALL + 10**7)), 0.1, reply=False)
    assert a.incarnation == WALL + 10**7 + 1
    # at its own incarnation with another address, or suspected: refutes again
    a.receive(gossip(entry("x"), entry("a", incarnation=a.incarnation, addr="mem://else")), 0.2)
    assert a.incarnation == WALL + 10**7 + 2
    assert a.member("a") == Node("a", "mem://a")


def test_a_new_address_is_adopted_only_once_it_answers_as_that_member() -> None:
    a = engine("a")
    a.receive(gossip(entry("b")), 0.0)
    a.take_outgoing()
    hijack = entry("b", incarnation=WALL + 1, addr="mem://thief")
    a.receive(gossip(entry("x"), hijack), 0.1, reply=False)
    assert a.member("b") == Node("b", "mem://b")  # not yet
    (check,) = a.take_outgoing()
    assert (check.addr, check.node_id, check.expects_reply) == ("mem://thief", "b", True)
    # an answer from elsewhere does not count; one from there, as b, does
    a.receive(gossip(entry("b", incarnation=WALL + 1, addr="mem://thief")), 0.2, peer="mem://x")
    assert a.member("b") == Node("b", "mem://b")
    answer = gossip(entry("b", incarnation=WALL + 1, addr="mem://thief", heartbeat=2))
    a.receive(answer, 0.3, peer="mem://thief", reply=False)
    assert a.member("b") == Node("b", "mem://thief")


def test_totals_are_bounded() -> None:
    a = Membership(
        "a",
        "mem://a",
        suspect_timeout=1.0,
        now=0.0,
        incarnation=WALL,
        wall_clock=lambda: WALL,
        max_members=50,
        max_actors=100,
    )
    for batch in range(10):
        entries = [entry(f"x{batch}")]
        for i in range(20):
            e = entry(f"n{batch}-{i}")
            e.registry_version = 1
            for k in range(30):
                e.actors.add(name=f"actor{k}", type_name="T", registered_at_ms=WALL)
            entries.append(e)
        a.receive(gossip(*entries), 0.1, reply=False)
    assert len(a.members(0.1)) == 50
    assert sum(len(names) for names in a._actor_index.values()) <= 100


def test_message_size_is_bounded() -> None:
    a = engine("a")
    for i in range(500):
        a.add_member(Node(f"n{i:03d}", f"mem://n{i:03d}"), 0.0)
    outgoing = a.tick(0.1)
    assert len(outgoing) == a.monitors + a.fanout
    for out in outgoing:
        msg = pb.Gossip.FromString(out.data)
        assert len(msg.members) <= 2 + a.max_piggyback + a.samples


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="node id"):
        engine("")
    with pytest.raises(ValueError, match="suspect_timeout"):
        engine("a", timeout=0)
