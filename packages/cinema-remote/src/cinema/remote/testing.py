"""Conformance suites for transport and serializer plugins, run with pytest.

A plugin author subclasses a suite in a test module (the subclass's name starts with ``Test``)
and provides its fixtures; every test of the suite then runs against the plugin, on each
backend anyio's pytest plugin selects::

    from cinema.remote.testing import TransportSuite

    class TestLoopTransport(TransportSuite):
        @pytest.fixture
        def transport(self) -> Transport:
            return LoopTransport()

        @pytest.fixture
        def address(self) -> str:
            return "loop://conformance"        # where listen() binds (port 0 is fine)

        @pytest.fixture
        def unreachable(self) -> str:
            return "loop://nobody"              # connect() must raise OSError

The transport suite checks the contract of :class:`cinema.abc.Connection`: whole frames in
order (also from concurrent senders), receive cancel-safe, anyio's error conventions
(``EndOfStream``, ``ClosedResourceError``), idempotent close, refusals (``OSError``,
``ValueError``), and a round trip through :class:`~cinema.remote.RemoteServer` and
:class:`~cinema.remote.RemoteClient` over the transport. The serializer suite checks round
trips, stable type names and the ``TypeError``/``ValueError`` refusals, then calls a remote
actor with messages of the serializer. This module needs pytest (a test dependency).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Self

import anyio
import pytest

from cinema import Actor, ActorSystem, Context, PluginRegistry, handler
from cinema.abc import Connection, Serializer, Transport, hookimpl

from ._client import RemoteClient
from ._node import LocalNode, MessageRouter
from ._rpc import rpc
from ._server import RemoteServer
from ._tcp import TcpTransport

__all__ = ["SerializerSuite", "TransportSuite"]

#: Frame sizes every transport must carry whole: empty, one byte, a few KiB, 1 MiB.
FRAME_SIZES = (0, 1, 5000, 1 << 20)


_PATTERN = bytes(range(251))


def _frame(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ with ``seed`` and along the frame (a cut would show)."""
    start = seed % 251
    return ((_PATTERN[start:] + _PATTERN[:start]) * (size // 251 + 1))[:size]


class _Echo(Actor):
    @handler
    def echo(self, msg: object, ctx: Context[Self]) -> object:
        return msg


class TransportSuite:
    """The contract of a :class:`cinema.abc.Transport` plugin; subclass it as ``Test...``.

    Fixtures to provide: ``transport`` (the instance under test), ``address`` (where
    ``listen`` binds; it may be bound more than once, one test after another) and
    ``unreachable`` (an address of the scheme where nothing listens).
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def transport(self) -> Transport:
        raise NotImplementedError("provide a `transport` fixture")

    @pytest.fixture
    def address(self) -> str:
        raise NotImplementedError("provide an `address` fixture")

    @pytest.fixture
    def unreachable(self) -> str:
        raise NotImplementedError("provide an `unreachable` fixture")

    @asynccontextmanager
    async def _pair(
        self, transport: Transport, address: str
    ) -> AsyncIterator[tuple[Connection, Connection]]:
        """A connected (client, server) pair, served by the transport's listener."""
        accepted: list[Connection] = []
        ready = anyio.Event()
        done = anyio.Event()

        async def handle(conn: Connection) -> None:
            accepted.append(conn)
            ready.set()
            await done.wait()

        listener = await transport.listen(address)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, handle)
                client = await transport.connect(listener.address)
                try:
                    with anyio.fail_after(10):
                        await ready.wait()
                    yield client, accepted[0]
                finally:
                    await client.aclose()
                    done.set()
                    tg.cancel_scope.cancel()
        finally:
            await listener.aclose()

    async def test_whole_frames_in_order_both_ways(
        self, transport: Transport, address: str
    ) -> None:
        async with self._pair(transport, address) as (client, server):
            got: dict[str, list[bytes]] = {"server": [], "client": []}

            async def send(conn: Connection, seed: int) -> None:
                for size in FRAME_SIZES:
                    await conn.send_frame(_frame(size, seed))

            async def receive(conn: Connection, into: list[bytes]) -> None:
                for _ in FRAME_SIZES:
                    into.append(await conn.receive_frame())

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send, client, 0)
                    tg.start_soon(send, server, 1)
                    tg.start_soon(receive, server, got["server"])
                    tg.start_soon(receive, client, got["client"])
            assert got["server"] == [_frame(size) for size in FRAME_SIZES]
            assert got["client"] == [_frame(size, 1) for size in FRAME_SIZES]

    async def test_concurrent_senders_never_interleave_frames(
        self, transport: Transport, address: str
    ) -> None:
        senders, each = 8, 20
        async with self._pair(transport, address) as (client, server):
            got: list[bytes] = []
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for sender in range(senders):

                        async def send(sender: int = sender) -> None:
                            for i in range(each):
                                await client.send_frame(bytes([sender, i]) * (1000 + sender))

                        tg.start_soon(send)
                    for _ in range(senders * each):
                        got.append(await server.receive_frame())
        last = dict.fromkeys(range(senders), -1)
        for frame in got:
            sender, i = frame[0], frame[1]
            assert frame == bytes([sender, i]) * (1000 + sender), "a frame was cut or mixed"
            assert i == last[sender] + 1, "one sender's frames out of order"
            last[sender] = i

    async def test_cancelled_receive_loses_nothing(
        self, transport: Transport, address: str
    ) -> None:
        big = _frame(1 << 20)
        async with (
            self._pair(transport, address) as (client, server),
            anyio.create_task_group() as tg,
        ):

            async def send() -> None:
                for _ in range(3):
                    await client.send_frame(big)

            tg.start_soon(send)
            received: list[bytes] = []
            with anyio.fail_after(60):
                while len(received) < 3:
                    # Cancel receive_frame over and over, also while a frame arrives.
                    with anyio.move_on_after(0.0005):
                        received.append(await server.receive_frame())
        assert received == [big] * 3

    async def test_clean_close_is_end_of_stream(self, transport: Transport, address: str) -> None:
        async with self._pair(transport, address) as (client, server):
            await client.send_frame(b"last")
            await client.aclose()
            assert await server.receive_frame() == b"last"
            with anyio.fail_after(10), pytest.raises(anyio.EndOfStream):
                await server.receive_frame()

    async def test_own_close_is_closed_resource_and_idempotent(
        self, transport: Transport, address: str
    ) -> None:
        async with self._pair(transport, address) as (client, _server):
            await client.aclose()
            await client.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await client.send_frame(b"x")
            with pytest.raises(anyio.ClosedResourceError):
                await client.receive_frame()

    async def test_close_wakes_a_pending_receive(self, transport: Transport, address: str) -> None:
        async with self._pair(transport, address) as (client, _server):
            failed: list[BaseException] = []

            async def receive() -> None:
                try:
                    await client.receive_frame()
                except Exception as exc:
                    failed.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                with anyio.fail_after(10):
                    await client.aclose()
        assert len(failed) == 1
        assert isinstance(
            failed[0], anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
        )

    async def test_refusals(self, transport: Transport, unreachable: str) -> None:
        with anyio.fail_after(10), pytest.raises(OSError):  # noqa: PT011 - the contract's type
            await transport.connect(unreachable)
        other = "other-scheme-for-conformance://x"
        with pytest.raises(ValueError, match="other-scheme-for-conformance"):
            await transport.connect(other)
        with pytest.raises(ValueError, match="other-scheme-for-conformance"):
            await transport.listen(other)

    async def test_listener_reports_an_address_connect_accepts(
        self, transport: Transport, address: str
    ) -> None:
        listener = await transport.listen(address)
        try:
            assert isinstance(listener.address, str)
            assert listener.address
        finally:
            await listener.aclose()
            await listener.aclose()

    async def test_remote_round_trip_over_the_transport(
        self, transport: Transport, address: str
    ) -> None:
        from google.protobuf.wrappers_pb2 import StringValue

        echo = rpc(StringValue, StringValue)
        async with ActorSystem() as system:
            node = LocalNode("conformance", route_by_type=True)
            actor = system.spawn(_Echo())
            handler_ = node.handler(actor, StringValue)
            async with await RemoteServer.bind(address, handler_, transport=transport) as server:
                conn = await transport.connect(server.address)
                async with RemoteClient(conn) as client:
                    remote = client.remote_addr(_Echo, "conformance", "echo")
                    for text in ("", "hello", "x" * 100_000):
                        reply = await remote.call(echo, StringValue(value=text), timeout=10)
                        assert reply.value == text


def _registry_with(serializer: Serializer) -> PluginRegistry:
    registry = PluginRegistry()

    @hookimpl
    def cinema_serializers() -> list[Serializer]:
        return [serializer]

    registry.register(SimpleNamespace(cinema_serializers=cinema_serializers), "conformance")
    return registry


class SerializerSuite:
    """The contract of a :class:`cinema.abc.Serializer` plugin; subclass it as ``Test...``.

    Fixtures to provide: ``serializer`` (the instance under test), ``samples`` (messages it
    handles, of at least one class, equal to themselves after a round trip) and ``foreign``
    (an object of a class it does not handle). ``garbage`` (bytes that are no valid encoding
    of the samples' classes) has a default to override when those bytes happen to be valid.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def serializer(self) -> Serializer:
        raise NotImplementedError("provide a `serializer` fixture")

    @pytest.fixture
    def samples(self) -> Sequence[object]:
        raise NotImplementedError("provide a `samples` fixture")

    @pytest.fixture
    def foreign(self) -> object:
        raise NotImplementedError("provide a `foreign` fixture")

    @pytest.fixture
    def garbage(self) -> bytes:
        return b"\xff\xfe\x00 not an encoding \x80\x81"

    def test_name_is_a_non_empty_string(self, serializer: Serializer) -> None:
        assert isinstance(serializer.name, str)
        assert serializer.name

    def test_round_trips(self, serializer: Serializer, samples: Sequence[object]) -> None:
        assert samples, "give at least one sample"
        for sample in samples:
            assert serializer.handles(type(sample))
            data = serializer.encode(sample)
            assert isinstance(data, bytes)
            assert serializer.decode(data, type(sample)) == sample

    def test_type_names_are_stable_strings(
        self, serializer: Serializer, samples: Sequence[object]
    ) -> None:
        for sample in samples:
            name = serializer.type_name(type(sample))
            assert isinstance(name, str)
            assert name
            assert serializer.type_name(type(sample)) == name
        classes = {type(s) for s in samples}
        assert len({serializer.type_name(c) for c in classes}) == len(classes), "names collide"

    def test_refuses_a_foreign_class(self, serializer: Serializer, foreign: object) -> None:
        assert not serializer.handles(type(foreign))
        with pytest.raises(TypeError):
            serializer.encode(foreign)
        with pytest.raises(TypeError):
            serializer.type_name(type(foreign))

    def test_refuses_bad_data_with_value_error(
        self, serializer: Serializer, samples: Sequence[object], garbage: bytes
    ) -> None:
        for cls in {type(s) for s in samples}:
            with pytest.raises(ValueError):  # noqa: PT011 - the contract names only the type
                serializer.decode(garbage, cls)

    async def test_remote_round_trip_with_the_serializer(
        self, serializer: Serializer, samples: Sequence[object]
    ) -> None:
        registry = _registry_with(serializer)
        async with ActorSystem() as system:
            node = LocalNode("conformance", plugins=registry, route_by_type=True)
            actor = system.spawn(_Echo())
            router = MessageRouter()
            for cls in {type(s): None for s in samples}:
                router.route(cls, node.handler(actor, cls))
            async with await RemoteServer.bind("127.0.0.1:0", router.build()) as server:
                conn = await TcpTransport().connect(server.address)
                async with RemoteClient(conn, plugins=registry) as client:
                    remote = client.remote_addr(_Echo, "conformance", "echo")
                    for sample in samples:
                        reply = await remote.call(rpc(type(sample), type(sample)), sample)
                        assert reply == sample
