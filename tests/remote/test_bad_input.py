"""Hostile or broken peers, over raw sockets: each gets an error reply or a closed connection
plus a log line, and the server keeps serving everyone else."""

from __future__ import annotations

import contextlib
import logging
import struct

import anyio
import pytest
from anyio.abc import SocketStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult
from tests.remote.raw_peer import expect_close, hello, raw, receive, request, send, still_serving
from tests.remote.support import calc_server

pytestmark = pytest.mark.anyio


async def test_oversized_frame_closes_the_connection_before_allocating(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with calc_server(max_frame_size=1024) as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            await stream.send(struct.pack(">I", 2**31))  # claims 2 GiB, sends nothing more
            close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
            assert "exceeds the limit of 1024" in close.error.message
        assert "exceeds the limit" in caplog.text
        await still_serving(server)


async def test_garbage_frame_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    async with calc_server() as (server, _calc, _addr):
        async with raw(server) as stream:
            await send(stream, b"\xff\xff\xff garbage \x00\x01")
            await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert "undecodable frame" in caplog.text
        await still_serving(server)


async def test_raw_garbage_without_framing(caplog: pytest.LogCaptureFixture) -> None:
    async with calc_server(max_frame_size=4096) as (server, _calc, _addr):
        async with raw(server) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert "closing connection" in caplog.text
        await still_serving(server)


async def test_truncated_frame_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cinema.remote")
    async with calc_server() as (server, _calc, _addr):
        async with raw(server) as stream:
            await hello(stream)
            await stream.send(struct.pack(">I", 100) + b"only ten b")
        # Wait for the server to notice the half frame.
        with anyio.fail_after(10):
            while server.connection_count:  # noqa: ASYNC110  # no event for server-side teardown
                await anyio.sleep(0.01)
        assert "middle of a frame" in caplog.text
        await still_serving(server)


async def test_first_frame_must_be_hello() -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await send(stream, request("remote_test.Add", Add(n=1).SerializeToString()))
        close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert "hello" in close.error.message


async def test_unsupported_protocol_version() -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await send(stream, pb.Frame(hello=pb.Hello(protocol_version=99)))
        close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert "version 99" in close.error.message


async def test_unknown_type_and_bad_payload_get_error_replies_on_a_live_connection() -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        await send(stream, request("no.such.Type", b"", cid=1))
        await send(stream, request("remote_test.Add", b"\xff\xff\xff", cid=2))
        await send(stream, request("remote_test.Add", Add(n=3).SerializeToString(), cid=3))
        replies = {}
        for _ in range(3):
            frame = await receive(stream)
            assert frame is not None
            replies[frame.envelope.correlation_id] = frame.envelope
        assert replies[1].error.kind == pb.ERROR_KIND_UNKNOWN_MESSAGE_TYPE
        assert replies[2].error.kind == pb.ERROR_KIND_DECODE_ERROR
        assert AddResult.FromString(replies[3].payload).value == 3
        assert replies[3].message_type == "remote_test.AddResult"


async def test_a_client_may_not_send_replies() -> None:
    async with calc_server() as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        frame = request("remote_test.Add", b"", cid=5)
        frame.envelope.kind = pb.ENVELOPE_KIND_REPLY
        await send(stream, frame)
        close = await expect_close(stream, pb.ERROR_KIND_PROTOCOL_ERROR)
        assert "ENVELOPE_KIND_REPLY" in close.error.message


async def test_silent_peer_times_out_in_the_handshake() -> None:
    async with calc_server(handshake_timeout=0.1) as (server, _calc, _addr):
        async with raw(server) as stream:
            close = await expect_close(stream, pb.ERROR_KIND_TIMEOUT)
            assert "handshake" in close.error.message
        await still_serving(server)


async def test_idle_peer_is_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    async with calc_server(idle_timeout=0.1) as (server, _calc, _addr), raw(server) as stream:
        await hello(stream)
        close = await expect_close(stream, pb.ERROR_KIND_TIMEOUT)
        assert "idle" in close.error.message
        assert "idle for 0.1 s" in caplog.text


async def test_connection_flood_is_limited(caplog: pytest.LogCaptureFixture) -> None:
    async with calc_server(max_connections=2) as (server, _calc, _addr):
        async with raw(server) as first, raw(server) as second:
            await hello(first)
            await hello(second)
            async with raw(server) as third:
                await expect_close(third, pb.ERROR_KIND_OVERLOADED)
            assert "max_connections" in caplog.text
            await send(first, request("remote_test.Add", Add(n=1).SerializeToString()))
            reply = await receive(first)
            assert reply is not None
            assert AddResult.FromString(reply.envelope.payload).value == 1
        with anyio.fail_after(10):
            while server.connection_count:  # noqa: ASYNC110  # no event for server-side teardown
                await anyio.sleep(0.01)
        await still_serving(server)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    greet=st.booleans(),
    garbage=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6),
)
async def test_fuzzed_bytes_never_hurt_the_server(greet: bool, garbage: list[bytes]) -> None:
    """Whatever arrives (after a valid hello or not), the server survives and serves others."""
    async with calc_server(max_frame_size=256, handshake_timeout=0.5, idle_timeout=0.5) as (
        server,
        _calc,
        _addr,
    ):
        async with raw(server) as stream:
            if greet:
                await hello(stream)
            # The server may hang up (and reset) before everything is sent. (uvloop's transport
            # raises RuntimeError for a write_eof after the peer closed.)
            with contextlib.suppress(anyio.BrokenResourceError, OSError, RuntimeError):
                for chunk in garbage:
                    await stream.send(chunk)
                await stream.send_eof()
            # The server answers something or nothing, and then ends the connection.
            with anyio.fail_after(10):
                while await receive_lenient(stream):
                    pass
        await still_serving(server)


async def receive_lenient(stream: SocketStream) -> bool:
    """Read whatever the server sends; False once it closed the connection."""
    try:
        return bool(await stream.receive())
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return False
