"""Actors and helpers for the remote and cluster acceptance tests (public API only).

The protobuf messages are the ones generated for the cinema-remote and cinema-cluster tests
(``tests/remote/protos``, ``tests/cluster/protos``), reused by import.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Self

import anyio
import pytest
from anyio.abc import SocketStream, TaskGroup

from cinema import Actor, ActorSystem, Addr, Context, handler
from cinema.remote import LocalNode, MessageRouter, RemoteServer, rpc
from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend
from tests.cluster.protos.cluster_test_pb2 import Ping as Ping
from tests.cluster.protos.cluster_test_pb2 import Pong as Pong
from tests.remote.protos.remote_test_pb2 import Add as Add
from tests.remote.protos.remote_test_pb2 import AddResult as AddResult
from tests.remote.protos.remote_test_pb2 import Echo as Echo
from tests.remote.protos.remote_test_pb2 import Fail as Fail
from tests.remote.protos.remote_test_pb2 import Sleep as Sleep
from tests.remote.protos.remote_test_pb2 import Stop as Stop
from tests.remote.protos.remote_test_pb2 import Unrouted as Unrouted

ADD = rpc(Add, AddResult)
ECHO = rpc(Echo, Echo)
SLEEP = rpc(Sleep, Echo)
PING = rpc(Ping, Pong)


class Counter(Actor):
    """Keeps a running total (``Add``); echoes; fails, sleeps and stops on request.

    Every ``Echo`` it handles is recorded in ``echoed`` and wakes ``echo_seen`` waiters.
    ``Sleep`` sets ``sleeping`` once inside the handler.
    """

    def __init__(self, start: int = 0, tag: str = "") -> None:
        self.value = start
        self.tag = tag
        self.echoed: list[str] = []
        self.echo_seen = anyio.Event()
        self.sleeping = anyio.Event()

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> AddResult:
        self.value += msg.n
        return AddResult(value=self.value)

    @handler
    def echo(self, msg: Echo, ctx: Context[Self]) -> Echo:
        self.echoed.append(msg.text)
        self.echo_seen.set()
        self.echo_seen = anyio.Event()
        return Echo(text=f"{self.tag}{msg.text}")

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise ValueError(msg.reason)

    @handler
    async def sleep(self, msg: Sleep, ctx: Context[Self]) -> Echo:
        self.sleeping.set()
        await anyio.sleep(msg.seconds)
        return Echo(text="slept")

    @handler
    def stop(self, msg: Stop, ctx: Context[Self]) -> None:
        ctx.stop()

    async def wait_echoed(self, text: str) -> None:
        while text not in self.echoed:
            await self.echo_seen.wait()


@dataclass
class Barrier:
    """Opens once ``parties`` tasks have arrived; a request can only pass it while the others
    are in flight too."""

    parties: int
    arrived: int = 0
    opened: anyio.Event = field(default_factory=anyio.Event)

    async def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.opened.set()
        await self.opened.wait()


class BarrierEcho(Actor):
    """Answers ``Echo`` only once ``barrier`` is open (one such actor per in-flight request)."""

    def __init__(self, barrier: Barrier) -> None:
        self.barrier = barrier

    @handler
    async def echo(self, msg: Echo, ctx: Context[Self]) -> Echo:
        await self.barrier.arrive()
        return Echo(text=msg.text)


@dataclass
class Served:
    """What :func:`serve_counter` hands to a test."""

    system: ActorSystem
    server: RemoteServer
    counter: Counter
    addr: Addr[Counter]
    node: LocalNode


def counter_router(node: LocalNode, addr: Addr[Counter]) -> MessageRouter:
    """Routes every test message type except ``Unrouted`` to ``addr``."""
    return (
        MessageRouter()
        .route(Add, node.handler(addr, Add))
        .route(Echo, node.handler(addr, Echo))
        .route(Fail, node.handler(addr, Fail))
        .route(Sleep, node.handler(addr, Sleep))
        .route(Stop, node.handler(addr, Stop))
    )


@asynccontextmanager
async def serve_counter(node_name: str = "server") -> AsyncIterator[Served]:
    """A system with a :class:`Counter` routed by type on ``node_name`` and exposed as
    ``"counter"``, served in the background (``async with server``) on 127.0.0.1 with an
    ephemeral port."""
    async with ActorSystem(shutdown_timeout=0.2) as system:
        counter = Counter()
        addr = system.spawn(counter)
        node = LocalNode(node_name)
        node.expose("counter", addr)
        server = await RemoteServer.bind("127.0.0.1:0", counter_router(node, addr).build())
        async with server:
            yield Served(system, server, counter, addr, node)


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """A loopback TCP relay to ``target_port``, which a test can cut (``cut()``: every
    relayed connection is closed and new ones are closed at once) and restore (``heal()``)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._open = True
        self._thawed = anyio.Event()
        self._thawed.set()
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._open = False
        for scope in list(self._scopes):
            scope.cancel()

    def heal(self) -> None:
        self._open = True

    def freeze(self) -> None:
        """Keep every connection open but forward nothing (a hung peer) until ``thaw()``."""
        self._thawed = anyio.Event()

    def thaw(self) -> None:
        self._thawed.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._relay, tg)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _relay(self, client: SocketStream) -> None:
        async with client:
            if not self._open:
                return
            self.accepted += 1
            try:
                upstream = await anyio.connect_tcp("127.0.0.1", self.target_port)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                self._scopes.add(tg.cancel_scope)
                tg.start_soon(self._pump, client, upstream, tg)
                tg.start_soon(self._pump, upstream, client, tg)
            self._scopes.discard(tg.cancel_scope)

    async def _pump(self, src: SocketStream, dst: SocketStream, tg: TaskGroup) -> None:
        try:
            async for chunk in src:
                await self._thawed.wait()
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        tg.cancel_scope.cancel()


class Gated(Actor):
    """``Echo`` waits for ``gate`` (set by the test) before replying; ``entered`` is set once
    inside. ``Add`` returns nothing when ``n`` is 0, else an ``Echo`` (not what ``ADD`` expects)."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.entered = anyio.Event()
        self.handled: list[str] = []

    @handler
    async def echo(self, msg: Echo, ctx: Context[Self]) -> Echo:
        self.entered.set()
        await self.gate.wait()
        self.handled.append(msg.text)
        return Echo(text=msg.text)

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> Echo | None:
        return None if msg.n == 0 else Echo(text="not an AddResult")


def _is_accept_race(context: dict[str, object]) -> bool:
    """CPython 3.11's selector loop: ``sock_accept`` cancelled in the loop pass that found a
    connection waiting, whose ``_sock_accept`` callback then sets the cancelled future."""
    exc = context.get("exception")
    if not isinstance(exc, asyncio.InvalidStateError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_sock_accept":
            conn = tb.tb_frame.f_locals.get("conn")
            if isinstance(conn, socket.socket):
                conn.close()  # accepted by nobody: leaked otherwise (a later ResourceWarning)
            return True
        tb = tb.tb_next
    return False


@pytest.fixture
async def accept_races(anyio_backend_name: str) -> AsyncIterator[list[dict[str, object]]]:
    """Records the asyncio accept race (a cancelled ``loop.sock_accept`` that still accepted
    and leaked a socket; fixed in cinema-remote) for the tests that check it never happens."""
    races: list[dict[str, object]] = []
    if anyio_backend_name != "asyncio":
        yield races
        return
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        if _is_accept_race(context):
            races.append(context)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    try:
        yield races
    finally:
        loop.set_exception_handler(previous)


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    """The remote and cluster contracts run on asyncio, trio and asyncio+uvloop."""
    return network_backend(request)
