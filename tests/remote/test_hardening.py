"""No peer can end, wedge or bloat a server (issue 8): one test or more per way it once could.

Every test plays the peer over a real loopback socket (or mem://) and then checks that the
server still serves others; they run on asyncio, trio and asyncio+uvloop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio
import pytest
from anyio.abc import SocketStream

from cinema import Actor, ActorSystem, Context, handler
from cinema.cluster import MemoryNetwork, MemoryTransport
from cinema.remote import (
    ConnectionLost,
    FrameTooLarge,
    LocalNode,
    MessageRouter,
    RemoteClient,
    RemoteHandlerError,
    RemoteServer,
    TcpTransport,
    rpc,
)
from cinema.remote._tcp import parse_host_port
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult, Echo, Fail
from tests.remote.raw_peer import (
    expect_close,
    hello,
    raw,
    receive,
    request,
    send,
    still_serving,
)
from tests.remote.support import ADD, ECHO, Calculator, calc_server, connect

pytestmark = pytest.mark.anyio

BLOW = rpc(Add, Echo)


class Blower(Actor):
    """Answers Add(n) with an Echo of n bytes: a handler whose replies can be too large."""

    @handler
    def blow(self, msg: Add, ctx: Context[Self]) -> Echo:
        return Echo(blob=b"x" * msg.n)


@asynccontextmanager
async def blower_server(**options: Any) -> AsyncIterator[RemoteServer]:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        node = LocalNode("blower")
        addr = system.spawn(Blower())
        node.expose("blower", addr)
        router = MessageRouter().route(Add, node.handler(addr, Add)).build()
        async with await RemoteServer.bind("127.0.0.1:0", router, **options) as server:
            yield server


async def wait_until(condition: Callable[[], bool]) -> None:
    # For server-side state that has no event of its own (a connection's teardown).
    with anyio.fail_after(20):
        while not condition():  # noqa: ASYNC110  # no event for server-internal state
            await anyio.sleep(0.01)


def envelope(kind: int, cid: int = 1) -> pb.Frame:
    frame = request("remote_test.Add", Add(n=1).SerializeToString(), cid=cid)
    frame.envelope.kind = kind  # type: ignore[assignment]  # any number: proto3 enums are open
    return frame


# -- 1. enum values outside the enum --------------------------------------------------------


@pytest.mark.parametrize("kind", [-1, 4, 99, 2**31 - 1])
async def test_an_envelope_kind_outside_the_enum_closes_only_that_connection(kind: int) -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        await send(stream, envelope(kind))
        close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert f"unknown value {kind}" in close.error.message
        await still_serving(server)


@pytest.mark.parametrize("kind", [-7, 3, 4, 2**31 - 1])
async def test_an_extension_kind_outside_the_enum_closes_only_that_connection(kind: int) -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        ext = pb.Extension(kind="x", envelope_kind=kind)  # type: ignore[arg-type]  # open enum
        await send(stream, pb.Frame(extension=ext))
        await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        await still_serving(server)


async def test_error_and_close_kinds_outside_the_enum_from_a_client_are_harmless() -> None:
    async with calc_server() as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            frame = request("remote_test.Add", Add(n=2).SerializeToString())
            frame.envelope.error.kind = 12345  # type: ignore[assignment]  # open enum
            await send(stream, frame)
            reply = await receive(stream)
            assert reply is not None
            assert AddResult.FromString(reply.envelope.payload).value == 2
            close = pb.Close(error=pb.Error(kind=999, message="bye"))  # type: ignore[arg-type]
            await send(stream, pb.Frame(close=close))
            assert await receive(stream) is None
        await still_serving(server)


async def test_a_client_survives_an_error_kind_outside_the_enum() -> None:
    """A server (or an impostor) may send any number too: the caller gets a typed error."""
    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)

            async def serve(stream: SocketStream) -> None:
                async with stream:
                    await receive(stream)  # the hello
                    await send(stream, pb.Frame(welcome=pb.Welcome(protocol_version=1)))
                    frame = await receive(stream)
                    assert frame is not None
                    bad = pb.Error(kind=4242)  # type: ignore[arg-type]  # open enum
                    reply = pb.Envelope(
                        kind=pb.ENVELOPE_KIND_REPLY,
                        correlation_id=frame.envelope.correlation_id,
                        error=bad,
                    )
                    await send(stream, pb.Frame(envelope=reply))
                    await receive(stream)

            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, serve)
                conn = await TcpTransport().connect(f"127.0.0.1:{port}")
                async with RemoteClient(conn) as client:
                    remote = client.remote_addr(Calculator, "", "calculator")
                    with pytest.raises(Exception, match="unknown value 4242") as info:
                        await remote.call(ADD, Add(n=1))
                    assert not isinstance(info.value, ValueError)
                tg.cancel_scope.cancel()


# -- 2. replies over max_frame_size, and peer strings echoed back ----------------------------


async def test_a_reply_over_max_frame_size_becomes_an_error_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with blower_server(max_frame_size=64 * 1024) as server:
        async with connect(server) as client:
            remote = client.remote_addr(Calculator, "blower", "blower")
            with pytest.raises(RemoteHandlerError, match="too large") as info:
                await remote.call(BLOW, Add(n=100_000))  # type: ignore[cinema-handler]  # on purpose
            assert info.value.type_name == "FrameTooLarge"
            # The same connection goes on serving.
            assert len((await remote.call(BLOW, Add(n=10))).blob) == 10  # type: ignore[cinema-handler]  # on purpose
        assert any(r.levelno == logging.ERROR and "too large" in r.message for r in caplog.records)


async def test_a_reply_over_the_default_limit_becomes_an_error_reply() -> None:
    async with blower_server() as server, connect(server) as client:
        remote = client.remote_addr(Calculator, "blower", "blower")
        with pytest.raises(RemoteHandlerError, match="too large"):
            await remote.call(BLOW, Add(n=17 * 1024 * 1024))  # type: ignore[cinema-handler]  # on purpose
        assert len((await remote.call(BLOW, Add(n=1))).blob) == 1  # type: ignore[cinema-handler]  # on purpose


async def test_peer_strings_come_back_clipped_in_error_replies() -> None:
    async with calc_server(max_frame_size=64 * 1024) as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            ext = pb.Extension(
                kind="k" * 50_000, envelope_kind=pb.ENVELOPE_KIND_REQUEST, correlation_id=1
            )
            await send(stream, pb.Frame(extension=ext))
            await send(stream, request("T" * 50_000, b"", cid=2))
            await send(
                stream,
                request("remote_test.Fail", Fail(reason="r" * 50_000).SerializeToString(), cid=3),
            )
            for _ in range(3):
                frame = await receive(stream)
                assert frame is not None
                assert frame.ByteSize() < 4096 + 50_000  # the echoed kind is the reply's own
                body = frame.extension if frame.HasField("extension") else frame.envelope
                assert body.error.kind != pb.ERROR_KIND_NONE
                assert len(body.error.message) <= 1100
                assert len(body.error.type_name) <= 1100
        await still_serving(server)


async def test_a_request_over_the_clients_limit_fails_alone() -> None:
    async with (
        calc_server() as (server, _calc, _addr),
        connect(server, max_frame_size=1024) as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(FrameTooLarge):
            await remote.call(ECHO, Echo(blob=b"x" * 2000))
        assert (await remote.call(ECHO, Echo(text="still here"))).text == "still here"


# -- 3. frames up to max_frame_size work on every backend ------------------------------------


@pytest.mark.parametrize("size", [2 * 1024 * 1024, 15 * 1024 * 1024])
async def test_large_frames_up_to_the_limit_go_both_ways(size: int) -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "second")
        with anyio.fail_after(60):
            reply = await remote.call(ECHO, Echo(blob=b"z" * size))
        assert len(reply.blob) == size


async def test_several_large_frames_in_flight() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "second")
        sizes = [3 * 1024 * 1024 + i for i in range(4)]
        got: list[int] = []

        async def one(size: int) -> None:
            got.append(len((await remote.call(ECHO, Echo(blob=b"q" * size))).blob))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for size in sizes:
                    tg.start_soon(one, size)
        assert sorted(got) == sizes


# -- 4. a peer that never reads --------------------------------------------------------------


async def flood(stream: SocketStream, count: int, size: int) -> None:
    """Send ``count`` echo requests of ``size`` bytes, never reading a reply."""
    blob = Echo(blob=b"f" * size).SerializeToString()
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        for cid in range(1, count + 1):
            await send(stream, request("remote_test.Echo", blob, cid=cid))


async def test_a_peer_that_does_not_read_its_replies_is_sent_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cinema.remote")
    async with calc_server(max_buffered_replies=256 * 1024) as (server, _calc, _addr):
        async with raw(server) as stream, anyio.create_task_group() as tg:
            await hello(stream)
            tg.start_soon(flood, stream, 2000, 64 * 1024)
            await wait_until(lambda: server.connection_count == 0)
            tg.cancel_scope.cancel()
        assert "does not read its replies" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        await still_serving(server)


async def test_the_total_reply_budget_is_shared_by_all_connections() -> None:
    budget = {"max_buffered_replies": 64 * 1024 * 1024, "max_total_buffered_replies": 256 * 1024}
    async with calc_server(**budget) as (server, _calc, _addr):
        async with raw(server) as stream, anyio.create_task_group() as tg:
            await hello(stream)
            tg.start_soon(flood, stream, 2000, 64 * 1024)
            await wait_until(lambda: server.connection_count == 0)
            tg.cancel_scope.cancel()
        await still_serving(server)


async def test_stopping_never_waits_for_a_peer_that_does_not_read() -> None:
    host_port: list[str] = []
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(30):
            async with calc_server() as (server, calc, _addr):
                host_port.append(server.address)
                host, port = parse_host_port(server.address)
                stream = await anyio.connect_tcp(host, port)
                await hello(stream)
                tg.start_soon(flood, stream, 400, 64 * 1024)
                # Every request handled: their replies (25 MB) are more than the socket buffers
                # hold, so the server's writes are stuck on this peer when it stops.
                await wait_until(lambda: len(calc.seen) >= 400)
        tg.cancel_scope.cancel()
    await stream.aclose()


# -- 5. before authentication: small frames only ---------------------------------------------


async def test_a_large_frame_before_the_handshake_closes_the_connection_at_once() -> None:
    async with calc_server(handshake_timeout=3600) as (server, _calc, _addr):
        async with raw(server) as stream:
            await stream.send(struct.pack(">I", 8 * 1024 * 1024) + b"\x0a" * 1000)
            close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
            assert "limit of 4096" in close.error.message
        await still_serving(server)


async def test_the_auth_frame_is_held_to_the_handshake_limit_too() -> None:
    async with calc_server(secret="s3cret", handshake_timeout=3600) as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            await stream.send(struct.pack(">I", 64 * 1024) + b"\x1a" * 100)
            close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
            assert "limit of 4096" in close.error.message
        async with connect(server, secret="s3cret") as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            assert (await remote.call(ADD, Add(n=0))).value == 0


# -- 6. logs: bounded, escaped, rate-limited -------------------------------------------------


async def test_peer_strings_in_logs_are_clipped_and_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cinema.remote")
    async with calc_server() as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            forged = "x\nCRITICAL forged line\r" + "y" * 100_000
            await send(stream, request(forged, b"", cid=1))
            reply = await receive(stream)
            assert reply is not None
            assert reply.envelope.error.kind == pb.ERROR_KIND_UNKNOWN_MESSAGE_TYPE
        await still_serving(server)
    for record in caplog.records:
        text = record.getMessage()
        assert "\n" not in text
        assert "\r" not in text
        assert len(text) < 2000
    assert "x\\nCRITICAL forged line" in caplog.text


async def test_log_lines_per_connection_are_rate_limited_with_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cinema.remote")
    async with calc_server() as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            for cid in range(1, 201):
                frame = request("no.such.Type", b"", cid=cid)
                frame.envelope.kind = pb.ENVELOPE_KIND_ONEWAY
                await send(stream, frame)
            await send(stream, request("no.such.Type", b"", cid=999))
            assert await receive(stream) is not None  # all 201 were handled
        await wait_until(lambda: server.connection_count == 0)
    lines = [r for r in caplog.records if "no.such.Type" in r.getMessage()]
    assert 1 <= len(lines) <= 20
    assert any("were suppressed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- 7. the caller's deadline covers connect, handshake and call ------------------------------


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts TCP connections and never answers."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def hold(stream: SocketStream) -> None:
            async with stream:
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        await stream.receive()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            yield f"127.0.0.1:{port}"
            tg.cancel_scope.cancel()


async def test_a_call_timeout_covers_the_handshake() -> None:
    async with silent_server() as address:
        conn = await TcpTransport().connect(address)
        async with RemoteClient(conn, handshake_timeout=30) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with anyio.fail_after(20):
                with pytest.raises(TimeoutError):
                    await remote.call(ADD, Add(n=1), timeout=0.2)
                # The handshake goes on for the next caller, within its deadline again.
                with pytest.raises(TimeoutError):
                    await remote.call(ADD, Add(n=1), timeout=0.2)


async def test_an_enclosing_deadline_covers_connect_and_handshake() -> None:
    async with silent_server() as address:
        with anyio.move_on_after(0.3) as scope:
            conn = await TcpTransport().connect(address)
            async with RemoteClient(conn, handshake_timeout=30) as client:
                remote = client.remote_addr(Calculator, "calc-server", "calculator")
                await remote.call(ADD, Add(n=1))
        assert scope.cancelled_caught


async def test_the_handshake_limit_still_ends_a_silent_server() -> None:
    async with silent_server() as address:
        conn = await TcpTransport().connect(address)
        async with RemoteClient(conn, handshake_timeout=0.2) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with anyio.fail_after(20), pytest.raises(TimeoutError):
                await remote.call(ADD, Add(n=1))
            with pytest.raises(ConnectionLost):
                await remote.call(ADD, Add(n=1))


async def test_a_handshake_cut_short_by_one_caller_is_finished_by_the_next() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with anyio.move_on_after(0):
            await remote.call(ADD, Add(n=1))
        assert (await remote.call(ADD, Add(n=0))).value >= 0


# -- 8. a peer that resets at once, or leaves in the middle of the handshake -----------------


async def test_clients_that_connect_and_reset_at_once_are_harmless() -> None:
    async with calc_server() as (server, _calc, _addr):
        host, port = parse_host_port(server.address)
        for _ in range(50):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.connect((host, port))
            sock.close()  # linger 0: a reset
        await wait_until(lambda: server.connection_count == 0)
        await still_serving(server)


async def test_a_client_that_resets_after_its_hello_is_harmless() -> None:
    async with calc_server() as (server, _calc, _addr):
        host, port = parse_host_port(server.address)
        hello_frame = pb.Frame(hello=pb.Hello(protocol_version=1)).SerializeToString()
        for _ in range(20):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.connect((host, port))
            sock.sendall(struct.pack(">I", len(hello_frame)) + hello_frame)
            sock.close()
        await wait_until(lambda: server.connection_count == 0)
        await still_serving(server)


async def test_a_mem_client_that_closes_after_its_hello_is_harmless() -> None:
    network = MemoryNetwork()
    transport = MemoryTransport(network)
    async with ActorSystem(shutdown_timeout=0.2) as system:
        node = LocalNode("mem-server")
        addr = system.spawn(Calculator())
        node.expose("calculator", addr)
        router = MessageRouter().route(Add, node.handler(addr, Add)).build()
        async with await RemoteServer.bind("mem://server", router, transport=transport) as server:
            hello_frame = pb.Frame(hello=pb.Hello(protocol_version=1)).SerializeToString()
            for _ in range(10):
                conn = await transport.connect("mem://server")
                await conn.send_frame(hello_frame)
                await conn.aclose()
            await wait_until(lambda: server.connection_count == 0)
            async with RemoteClient(await transport.connect("mem://server")) as client:
                remote = client.remote_addr(Calculator, "mem-server", "calculator")
                assert (await remote.call(ADD, Add(n=4))).value == 4


# -- 10. one source cannot take every connection slot ----------------------------------------


async def test_one_source_address_cannot_take_every_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with calc_server(max_connections=10, max_connections_per_source=2) as (
        server,
        _calc,
        _addr,
    ):
        async with raw(server, "127.0.0.2") as first, raw(server, "127.0.0.2") as second:
            await hello(first)
            await hello(second)
            async with raw(server, "127.0.0.2") as third:
                await expect_close(third, pb.ERROR_KIND_OVERLOADED)
            assert "max_connections_per_source" in caplog.text
            # Another address still gets in.
            await still_serving(server)
        await wait_until(lambda: server.connection_count == 0)
        async with raw(server, "127.0.0.2") as again:
            await hello(again)


async def test_a_large_request_right_after_auth_is_served() -> None:
    """The client sends its first request with no wait after Auth: the handshake limit must
    not apply to it, even when both arrive in one read."""
    async with calc_server(secret="s3cret") as (server, _calc, _addr):
        for size in (100_000, 3 * 1024 * 1024):
            async with connect(server, secret="s3cret") as client:
                remote = client.remote_addr(Calculator, "calc-server", "second")
                assert len((await remote.call(ECHO, Echo(blob=b"b" * size))).blob) == size


async def test_a_raw_peer_may_pipeline_its_first_requests_behind_hello() -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        hello_frame = pb.Frame(hello=pb.Hello(protocol_version=1)).SerializeToString()
        big = request("remote_test.Echo", Echo(blob=b"p" * 50_000).SerializeToString())
        body = big.SerializeToString()
        await stream.send(
            struct.pack(">I", len(hello_frame)) + hello_frame + struct.pack(">I", len(body)) + body
        )
        welcome = await receive(stream)
        assert welcome is not None
        assert welcome.HasField("welcome")
        reply = await receive(stream)
        assert reply is not None
        assert len(Echo.FromString(reply.envelope.payload).blob) == 50_000


async def test_an_oversized_frame_behind_a_good_one_closes_the_connection() -> None:
    async with calc_server(max_frame_size=4096) as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            good = request("remote_test.Add", Add(n=5).SerializeToString()).SerializeToString()
            await stream.send(struct.pack(">I", len(good)) + good + struct.pack(">I", 2**31))
            # The good request may be answered before the Close, or dropped with the peer.
            frame = await receive(stream)
            assert frame is not None
            if frame.HasField("envelope"):
                assert AddResult.FromString(frame.envelope.payload).value == 5
                frame = await receive(stream)
                assert frame is not None
            assert frame.close.error.kind == pb.ERROR_KIND_PROTOCOL_ERROR
            assert "exceeds the limit of 4096" in frame.close.error.message
            assert await receive(stream) is None
        await still_serving(server)


@pytest.mark.parametrize("field", ["target_node", "actor_name", "message_type", "serializer"])
async def test_each_peer_string_is_quoted_clipped_in_its_error_reply(field: str) -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        frame = request("remote_test.Add", Add(n=1).SerializeToString())
        setattr(frame.envelope, field, "\n" + "s" * 30_000)
        if field == "actor_name":
            frame.envelope.message_type = "remote_test.Unrouted"  # known, but not routed
        await send(stream, frame)
        reply = await receive(stream)
        assert reply is not None
        error = reply.envelope.error
        assert error.kind != pb.ERROR_KIND_NONE
        assert "s" * 199 + "...(29801 more)" in error.message  # the newline is escaped: 2 chars
        assert "\n" not in error.message
        assert len(error.message) < 400
