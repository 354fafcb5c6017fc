"""The fault suite: loss, pauses, isolation, long partitions, joins and hostile peers, on the
nodes' real membership engine in the deterministic simulation (fixed seeds: every run is the
same). Large-N figures come from benchmarks/workloads/cluster.py; these use sizes that keep the
suite fast but large enough for the failure modes to show (the old engine failed each)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from cinema.cluster import NodeStatus, Simulation
from cinema.cluster.proto import gossip_pb2 as pb

UP, SUSPECT, DOWN = NodeStatus.UP, NodeStatus.SUSPECT, NodeStatus.DOWN
# The default timing, in rounds: gossip every 0.5 s, suspect_timeout 5 s.
INTERVAL, TIMEOUT = 0.5, 5.0
ROOT = Path(__file__).resolve().parents[2]


def cluster(n: int, *, seed: int = 1, tombstone_ttl: float | None = None) -> Simulation:
    sim = Simulation(
        seed=seed, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT, tombstone_ttl=tombstone_ttl
    )
    sim.add_cluster(f"n{i:03d}" for i in range(n))
    sim.run_rounds(3)
    return sim


def test_no_false_down_under_loss() -> None:
    sim = cluster(80)
    sim.network.loss = 0.2  # twice the 10%, so that the margin shows
    start = sim.now
    sim.run_rounds(50)
    assert sim.false_verdicts(DOWN, since=start) == 0
    assert all(sim.everyone_sees(i, UP) for i in sim.running)


def test_a_paused_node_coming_back_marks_nobody_down() -> None:
    sim = cluster(30)
    for holder in ("n001", "n002"):  # one name on two live nodes
        sim.node(holder).register_actor("shared", "Worker")
    sim.run_rounds(20)
    winner = sim.node("n005").lookup_actor("shared")
    assert winner is not None
    sim.pause("n007")
    sim.run(4 * TIMEOUT)  # long enough for the others to mark it Down
    assert sim.everyone_sees("n007", DOWN)
    start = sim.now
    sim.resume("n007")
    for _ in range(40):
        sim.run_rounds(1)
        # the name resolves the same on every node, the resumed one included, all along
        assert {sim.node(i).lookup_actor("shared") for i in sim.running} == {winner}
    healthy = [i for i in sim.running if i != "n007"]
    assert sim.false_verdicts(DOWN, healthy=healthy, since=start) == 0
    assert sim.false_verdicts(SUSPECT, healthy=healthy, since=start) == 0
    assert sim.converged()  # and the paused node itself is Up again everywhere


def test_an_isolated_node_coming_back_marks_nobody_down() -> None:
    sim = cluster(30)
    sim.isolate("n011")
    sim.run(6 * TIMEOUT)
    assert sim.everyone_sees("n011", DOWN)
    healthy = [i for i in sim.running if i != "n011"]
    # isolated, it doubts itself rather than accuse the nodes it can no longer hear
    assert all(sim.view("n011")[i] is not DOWN for i in healthy)
    sim.network.heal()
    assert sim.run_until(sim.converged, timeout=20 * INTERVAL) is not None
    assert sim.false_verdicts(DOWN, healthy=healthy) == 0


def test_a_joiner_knows_everyone_and_every_actor_within_2_log2_n_plus_2_rounds() -> None:
    n = 150
    sim = cluster(n)
    for i in range(0, n, 10):
        sim.node(f"n{i:03d}").register_actor(f"actor{i}", "Worker")
    sim.run_rounds(8)  # the seed hears of the registrations
    joiner = sim.add_node("joiner", seeds=["n000"])

    def knows_all() -> bool:
        view = sim.view("joiner")
        return len(view) == n + 1 and len(joiner.actors()) == n // 10

    took = sim.run_until(knows_all, timeout=40 * INTERVAL)
    assert took is not None
    assert took / INTERVAL <= 2 * math.log2(n) + 2


def test_a_crash_is_down_everywhere_within_two_suspect_timeouts_and_three_rounds() -> None:
    # In this run a few nodes hear the victim's last heartbeat after its suspecters did; the
    # engine used to take that second-hand news as proof of life, clear the suspicion
    # everywhere and start over (29 rounds).
    sim = cluster(100, seed=6)
    sim.network.loss = 0.05
    sim.kill("n042")
    took = sim.run_until(lambda: sim.everyone_sees("n042", DOWN), timeout=10 * TIMEOUT)
    assert took is not None
    assert took <= 2 * TIMEOUT + 3 * INTERVAL
    assert sim.false_verdicts(DOWN) == 0


def test_a_partition_longer_than_the_tombstone_ttl_heals() -> None:
    sim = cluster(20, tombstone_ttl=4 * TIMEOUT)
    left = [sim.address(f"n{i:03d}") for i in range(10)]
    right = [sim.address(f"n{i:03d}") for i in range(10, 20)]
    sim.network.partition(left, right)
    sim.run(12 * TIMEOUT)  # 60 s: three tombstone TTLs
    assert sim.everyone_sees("n000", DOWN) is False  # its own side keeps it Up
    assert "n000" not in sim.view("n015")  # no longer listed on the other side ...
    assert sim.node("n015").status_of("n000") is DOWN  # ... but remembered, and retried
    sim.network.heal()
    took = sim.run_until(sim.converged, timeout=60 * INTERVAL)
    assert took is not None


def test_seeds_are_retried_after_the_members_are_forgotten() -> None:
    sim = Simulation(
        seed=3,
        gossip_interval=INTERVAL,
        suspect_timeout=TIMEOUT,
        tombstone_ttl=4 * TIMEOUT,
        reconnect_window=4 * TIMEOUT,
    )
    sim.add_node("seed")
    for i in range(5):
        sim.add_node(f"m{i}", seeds=["seed"])
    assert sim.run_until(sim.converged, timeout=20 * INTERVAL) is not None
    sim.network.partition(
        [sim.address("seed"), sim.address("m0")], [sim.address(f"m{i}") for i in range(1, 5)]
    )
    sim.run(12 * TIMEOUT)  # far past the reconnect window: the two sides forget each other
    assert sim.node("m1").status_of("seed") is None
    assert sim.node("seed").status_of("m1") is None
    sim.network.heal()
    assert sim.run_until(sim.converged, timeout=40 * INTERVAL) is not None


def test_one_node_with_an_unparseable_address_hurts_nobody() -> None:
    sim = cluster(20)
    bad = pb.Gossip(
        members=[
            pb.MemberState(id="n000", addr="mem://n000", status=pb.MEMBER_STATUS_UP),
            *(
                pb.MemberState(id=f"bad{k}", addr=addr, status=pb.MEMBER_STATUS_UP)
                for k, addr in enumerate(["127.0.0.1:99999", "nocolon", "bogus://x"])
            ),
        ]
    ).SerializeToString()
    for target in ("n001", "n002"):
        sim.node(target).receive(bad, sim.now, peer="mem://n000")
    sim.run_rounds(20)
    assert len(sim.running) == 20
    assert all(not i.startswith("bad") for i in sim.view("n005"))
    assert sim.converged()


def test_a_huge_incarnation_claimed_for_a_node_is_refuted() -> None:
    sim = cluster(20)
    victim = sim.node("n004")
    claim = pb.Gossip(
        members=[
            pb.MemberState(id="n000", addr="mem://n000", status=pb.MEMBER_STATUS_UP),
            pb.MemberState(
                id="n004",
                addr="mem://n004",
                status=pb.MEMBER_STATUS_DOWN,
                incarnation=victim.incarnation + 10**7,
            ),
        ]
    ).SerializeToString()
    sim.node("n009").receive(claim, sim.now, peer="mem://n000")
    assert sim.run_until(lambda: sim.everyone_sees("n004", UP), timeout=20 * INTERVAL)
    assert victim.incarnation > 10**7


def test_fake_members_that_never_answer_are_found_down() -> None:
    sim = cluster(30)
    fakes = pb.Gossip(
        members=[
            pb.MemberState(id="n000", addr="mem://n000", status=pb.MEMBER_STATUS_UP),
            *(
                pb.MemberState(
                    id=f"n000-fake{k:03d}",
                    addr=f"mem://fake{k}",
                    status=pb.MEMBER_STATUS_UP,
                    incarnation=1,
                )
                for k in range(100)
            ),
        ]
    ).SerializeToString()
    sim.node("n003").receive(fakes, sim.now, peer="mem://n000")
    sim.run_rounds(5)
    assert any(i.startswith("n000-fake") for i in sim.view("n020"))  # they spread ...

    def all_gone() -> bool:
        return all(
            sim.view(i).get(f"n000-fake{k:03d}", DOWN) is not UP
            for i in sim.running
            for k in range(100)
        )

    assert sim.run_until(all_gone, timeout=120 * TIMEOUT) is not None  # ... then go Down
    assert sim.false_verdicts(DOWN) == 0


_DIGEST = """
import hashlib
from cinema.cluster import Simulation
sim = Simulation(seed=5, gossip_interval=0.5, suspect_timeout=5.0)
sim.add_cluster(f"n{i:02d}" for i in range(15))
sim.network.loss = 0.1
sim.kill("n07")
sim.run_rounds(40)
print(hashlib.sha256(repr((sorted(sim.bytes_sent.items()), sim.verdicts)).encode()).hexdigest())
"""


def test_a_run_does_not_depend_on_pythonhashseed() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1
