"""cinema.cluster.testing: the in-memory cluster and its fixture."""

from __future__ import annotations

import pytest

from cinema.cluster import NodeStatus
from cinema.cluster.testing import MemoryCluster
from cinema.testing import eventually

pytestmark = pytest.mark.anyio


async def test_the_fixture_is_a_converged_three_node_cluster(
    memory_cluster: MemoryCluster,
) -> None:
    assert [node.id for node in memory_cluster.nodes] == ["node-1", "node-2", "node-3"]
    for node in memory_cluster.nodes:
        assert {m.id: m.status for m in node.members()} == dict.fromkeys(
            memory_cluster.ids, NodeStatus.UP
        )


@pytest.mark.parametrize("memory_cluster", [5], indirect=True)
async def test_indirect_parametrization_sets_the_size(memory_cluster: MemoryCluster) -> None:
    assert len(memory_cluster.nodes) == 5


async def test_registry_spreads_and_partitions_apply(memory_cluster: MemoryCluster) -> None:
    await memory_cluster["node-2"].register_actor("kv", "Store")
    node3 = memory_cluster["node-3"]
    await node3.wait_until(lambda: node3.lookup_actor("kv") is not None)
    assert node3.lookup_actor("kv") == ("node-2", "Store")
    memory_cluster.network.partition(["mem://node-1"], ["mem://node-2", "mem://node-3"])
    await eventually(lambda: node3.status_of("node-1") is not NodeStatus.UP)


def test_at_least_one_node() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MemoryCluster(0)
    with pytest.raises(KeyError):
        MemoryCluster(1)["node-9"]
