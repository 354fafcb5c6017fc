"""An in-memory cluster for tests, and its pytest fixture (entry point ``pytest11``).

:class:`MemoryCluster` starts ``n`` :class:`~cinema.cluster.ClusterNode` s named ``node-1`` ...
``node-n`` at ``mem://node-1`` ... on one :class:`~cinema.cluster.MemoryNetwork` (no sockets),
joins them through ``node-1`` and returns once every node sees every node ``Up``::

    async with MemoryCluster(3) as cluster:
        await cluster["node-2"].register_actor("kv", "Store")
        cluster.network.partition(["mem://node-1"], ["mem://node-2", "mem://node-3"])

The ``memory_cluster`` fixture is a started three-node cluster, for tests that anyio's pytest
plugin runs; ``@pytest.mark.parametrize("memory_cluster", [5], indirect=True)`` asks for
five nodes. Gossip runs fast (0.05 s rounds) unless ``gossip_interval=`` says otherwise. The
failure detector reads real time (:func:`time.monotonic`), not a virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Any, Self, final

import anyio
import pytest

from cinema.remote import RemoteHandler

from ._memory import MemoryNetwork, MemoryTransport
from ._node import ClusterNode
from ._types import NodeStatus

__all__ = ["MemoryCluster", "memory_cluster"]


@final
class MemoryCluster:
    """``n`` cluster nodes over one in-memory network, started and joined together.

    :param n: how many nodes (at least 1).
    :param seed: seeds the network's random source (loss, jitter).
    :param handlers: what each node serves, by node id (``node.handler(...)`` or a router).
    :param timeout: seconds to wait for the membership to converge on start.
    :param options: passed to every :class:`~cinema.cluster.ClusterNode` (``gossip_interval``,
        ``suspect_timeout``, ...).
    :raises ValueError: ``n`` is less than 1.
    """

    def __init__(
        self,
        n: int = 3,
        *,
        seed: int = 0,
        handlers: Mapping[str, RemoteHandler] | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        if n < 1:
            raise ValueError(f"a cluster has at least one node, not {n}")
        self.network = MemoryNetwork(seed=seed)
        self.transport = MemoryTransport(self.network)
        self.ids = [f"node-{i}" for i in range(1, n + 1)]
        self.nodes: list[ClusterNode] = []
        self._handlers = dict(handlers or {})
        self._timeout = timeout
        self._options = {"gossip_interval": 0.05, "suspect_timeout": 0.5, **options}
        self._stack = AsyncExitStack()

    def __getitem__(self, node_id: str) -> ClusterNode:
        """The node with this id.

        :raises KeyError: no such node.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            seeds = [f"mem://{self.ids[0]}"]
            for node_id in self.ids:
                node = ClusterNode(
                    node_id,
                    f"mem://{node_id}",
                    handler=self._handlers.get(node_id),
                    seeds=seeds,
                    transport=self.transport,
                    **self._options,
                )
                self.nodes.append(await self._stack.enter_async_context(node))
            with anyio.fail_after(self._timeout):
                for node in self.nodes:
                    await node.wait_until(partial(self._all_up, node))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    def _all_up(self, node: ClusterNode) -> bool:
        return all(node.status_of(other) is NodeStatus.UP for other in self.ids)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)


@pytest.fixture
async def memory_cluster(
    request: pytest.FixtureRequest, anyio_backend: object
) -> AsyncIterator[MemoryCluster]:
    """A started in-memory cluster of three nodes (indirect parametrization sets the count)."""
    n = int(getattr(request, "param", 3))
    async with MemoryCluster(n) as cluster:
        yield cluster
