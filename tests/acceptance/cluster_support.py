"""Helpers for the cluster acceptance tests (public API only): nodes that a test can crash or
stop gracefully, an actor that records membership events, a Ping actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

import anyio
from anyio.abc import TaskStatus

from cinema import Actor, Context, handler
from cinema.cluster import ClusterNode, MemberEvent, NodeStatus
from tests.acceptance.remote_support import Barrier, Ping, Pong


class EventRecorder(Actor):
    """Records the membership events of the node it is subscribed to, with arrival times."""

    def __init__(self) -> None:
        self.events: list[tuple[float, MemberEvent]] = []
        self._changed = anyio.Event()

    @handler
    def on_event(self, msg: MemberEvent, ctx: Context[Self]) -> None:
        self.events.append((anyio.current_time(), msg))
        self._changed.set()
        self._changed = anyio.Event()

    def first(self, kind: type[MemberEvent], node_id: str, after: float = 0.0) -> float | None:
        """Arrival time of the first ``kind`` event about ``node_id`` at or after ``after``."""
        for when, event in self.events:
            if isinstance(event, kind) and event.node.id == node_id and when >= after:
                return when
        return None

    async def wait_event(self, kind: type[MemberEvent], node_id: str, after: float = 0.0) -> float:
        while (when := self.first(kind, node_id, after)) is None:
            await self._changed.wait()
        return when

    def statuses(self, node_id: str) -> list[NodeStatus]:
        return [event.node.status for _, event in self.events if event.node.id == node_id]


class Pinger(Actor):
    """Answers ``Ping`` with a ``Pong`` naming where it runs; records one-way pings too."""

    def __init__(self, where: str, barrier: Barrier | None = None) -> None:
        self.where = where
        self.barrier = barrier
        self.seen: list[str] = []
        self._changed = anyio.Event()

    @handler
    async def ping(self, msg: Ping, ctx: Context[Self]) -> Pong:
        self.seen.append(msg.msg)
        self._changed.set()
        self._changed = anyio.Event()
        if self.barrier is not None:
            await self.barrier.arrive()
        return Pong(reply=f"pong: {msg.msg} from {self.where}")

    async def wait_seen(self, text: str) -> None:
        while text not in self.seen:
            await self._changed.wait()


class RunningNode:
    """Runs ``async with node:`` in a task: ``crash()`` cancels the block (no goodbye),
    ``await stop()`` leaves it normally (graceful leave)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._scope = anyio.CancelScope()
        self._leave = anyio.Event()
        self.exited = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._scope:
                async with self.node:
                    task_status.started()
                    await self._leave.wait()
        finally:
            self.exited.set()

    def crash(self) -> None:
        self._scope.cancel()

    async def stop(self) -> None:
        self._leave.set()
        await self.exited.wait()


def all_up(node: ClusterNode, *ids: str) -> Callable[[], bool]:
    """A ``wait_until`` predicate: ``node`` sees every one of ``ids`` Up."""
    return lambda: all(node.status_of(i) is NodeStatus.UP for i in ids)


def addr(port: int) -> str:
    return f"127.0.0.1:{port}"


def fast(**options: Any) -> dict[str, Any]:
    """Options for quick gossip; failure detection slow enough not to misfire on a busy
    machine unless a test asks for short timeouts."""
    return {"gossip_interval": 0.05, "suspect_timeout": 3.0} | options
