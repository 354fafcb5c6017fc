"""Test actors and helpers shared by the cinema-remote tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio

from cinema import Actor, ActorSystem, Context, SupervisorStrategy, handler
from cinema.remote import (
    LocalNode,
    MessageRouter,
    RemoteClient,
    RemoteServer,
    TcpTransport,
    rpc,
)
from tests.remote.protos.remote_test_pb2 import Add, AddResult, Echo, Fail, Sleep, Stop

ADD = rpc(Add, AddResult)
ECHO = rpc(Echo, Echo)


class Calculator(Actor):
    """Keeps a running total; also echoes, fails, sleeps and stops on request."""

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.seen: list[Any] = []

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> AddResult:
        self.value += msg.n
        return AddResult(value=self.value)

    @handler
    def echo(self, msg: Echo, ctx: Context[Self]) -> Echo:
        self.seen.append(msg)
        return Echo(text=msg.text, blob=msg.blob)

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise ValueError(msg.reason)

    @handler
    async def sleep(self, msg: Sleep, ctx: Context[Self]) -> Echo:
        await anyio.sleep(msg.seconds)
        return Echo(text="slept")

    @handler
    def stop(self, msg: Stop, ctx: Context[Self]) -> None:
        ctx.stop()


@asynccontextmanager
async def calc_server(**options: Any) -> AsyncIterator[tuple[RemoteServer, Calculator, Any]]:
    """A system with a Calculator served (by type and as "calculator") on 127.0.0.1:<free>."""
    calc = Calculator()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        # Restart (the same instance, so tests can inspect it) when a handler raises.
        addr = system.spawn_with_strategy(lambda: calc, SupervisorStrategy.restart(100, 60))
        node = LocalNode("calc-server")
        node.expose("calculator", addr)
        node.expose("second", system.spawn(Calculator()))
        router = (
            MessageRouter()
            .route(Add, node.handler(addr, Add))
            .route(Echo, node.handler(addr, Echo))
            .route(Fail, node.handler(addr, Fail))
            .route(Sleep, node.handler(addr, Sleep))
            .route(Stop, node.handler(addr, Stop))
            .build()
        )
        server = await RemoteServer.bind("127.0.0.1:0", router, **options)
        async with server:
            yield server, calc, addr


@asynccontextmanager
async def connect(server: RemoteServer, **options: Any) -> AsyncIterator[RemoteClient]:
    conn = await TcpTransport().connect(server.address)
    async with RemoteClient(conn, **options) as client:
        yield client
