"""Properties of whole simulated clusters under random faults (hypothesis, derandomized)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cinema.cluster import NodeStatus, Simulation

INTERVAL, TIMEOUT = 0.1, 1.0


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    # up to 10 nodes: every phase (partition, heal, crash, restart) shows from 3; more only
    # makes each example slower
    n=st.integers(min_value=3, max_value=10),
    seed=st.integers(min_value=0, max_value=10_000),
    loss=st.sampled_from([0.0, 0.05, 0.1]),
    split=st.integers(min_value=1, max_value=13),
    victim=st.integers(min_value=0, max_value=13),
)
def test_faults_heal_into_agreement(
    n: int, seed: int, loss: float, split: int, victim: int
) -> None:
    sim = Simulation(seed=seed, gossip_interval=INTERVAL, suspect_timeout=TIMEOUT)
    ids = [f"n{i:02d}" for i in range(n)]
    sim.add_node(ids[0])
    for node_id in ids[1:]:
        sim.add_node(node_id, seeds=[ids[0]])
    assert sim.run_until(sim.converged, timeout=10.0) is not None
    sim.network.loss = loss

    # a partition, long enough for each side to give the other up, then healed
    cut = split % (n - 1) + 1
    sim.network.partition([sim.address(i) for i in ids[:cut]], [sim.address(i) for i in ids[cut:]])
    sim.run(3 * TIMEOUT)
    sim.network.heal()
    assert sim.run_until(sim.converged, timeout=15 * TIMEOUT) is not None

    # a crash: Down everywhere within 2 * suspect_timeout and a few rounds, and nobody else
    dead = ids[victim % n]
    sim.kill(dead)
    assert sim.run_until(lambda: sim.everyone_sees(dead, NodeStatus.DOWN), timeout=4 * TIMEOUT)
    for observer in sim.running:
        assert all(s is not NodeStatus.DOWN for i, s in sim.view(observer).items() if i != dead)

    # and a restart under the same id comes back Up everywhere
    sim.add_node(dead, seeds=[i for i in ids if i != dead][:1])
    assert sim.run_until(sim.converged, timeout=5 * TIMEOUT) is not None
