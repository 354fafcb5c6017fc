"""Actors and helpers shared by the cinema-cluster tests."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Self

import anyio

from cinema import Actor, Context, handler
from cinema.cluster import MemberEvent
from cinema.remote import rpc

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cluster.protos.cluster_test_pb2 import Ping as Ping  # noqa: E402
from tests.cluster.protos.cluster_test_pb2 import Pong as Pong  # noqa: E402

PING = rpc(Ping, Pong)


class PingPong(Actor):
    """Answers every Ping with a Pong naming the node it runs on."""

    def __init__(self, where: str = "") -> None:
        self.where = where
        self.notes: list[str] = []

    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> Pong:
        self.notes.append(msg.msg)
        return Pong(reply=f"pong: {msg.msg} from {self.where}")


class EventLog(Actor):
    """Collects membership events; wakes waiters on each."""

    def __init__(self) -> None:
        self.events: list[MemberEvent] = []
        self.changed = anyio.Event()

    @handler
    def on_event(self, msg: MemberEvent, ctx: Context[Self]) -> None:
        self.events.append(msg)
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[list[MemberEvent]], bool]) -> None:
        while not predicate(self.events):
            await self.changed.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def eventually(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (the cluster's state changes with gossip, which has no
    event to wait on from outside), failing after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        # Gossip changes the state in the background with no event to wait on: poll.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)
