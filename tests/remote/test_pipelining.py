"""Requests that arrive together (one read) are handled concurrently: one that waits never holds
up the ones behind it, whichever task ends up handling them (on asyncio the reader handles a
batch itself and hands out the rest only when a handler waits)."""

from __future__ import annotations

import os
import struct

import anyio
import pytest

from cinema.remote import FrameDecoder
from cinema.remote._tcp import parse_host_port
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Echo, Sleep
from tests.remote.support import ECHO, Calculator, calc_server, connect

pytestmark = pytest.mark.anyio


def framed(frame: pb.Frame) -> bytes:
    body = frame.SerializeToString()
    return struct.pack(">I", len(body)) + body


def request(cid: int, actor: str, message: Sleep | Echo) -> pb.Frame:
    return pb.Frame(
        envelope=pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            correlation_id=cid,
            actor_name=actor,
            message_type=message.DESCRIPTOR.full_name,
            payload=message.SerializeToString(),
        )
    )


async def test_a_waiting_request_does_not_hold_up_the_ones_that_arrived_with_it() -> None:
    async with calc_server() as (server, _calc, _addr):
        host, port = parse_host_port(server.address)
        async with await anyio.connect_tcp(host, port) as stream:
            hello = pb.Frame(hello=pb.Hello(protocol_version=1, client_nonce=os.urandom(16)))
            # The handshake and a first batch: a long sleep first, then echoes to another actor,
            # all in one write (so they reach the server in one read).
            frames = [request(1, "calculator", Sleep(seconds=30))]
            frames += [request(cid, "second", Echo(text=str(cid))) for cid in range(2, 10)]
            await stream.send(framed(hello) + b"".join(framed(f) for f in frames))
            decoder = FrameDecoder()
            replies: list[int] = []
            with anyio.fail_after(10):  # the sleep's reply would take 30 s
                while len(replies) < 8:
                    while (data := decoder.next_frame()) is None:
                        decoder.feed(await stream.receive())
                    frame = pb.Frame.FromString(data)
                    if frame.WhichOneof("body") == "envelope":
                        assert not frame.envelope.HasField("error"), frame
                        replies.append(frame.envelope.correlation_id)
            assert sorted(replies) == list(range(2, 10))


async def test_many_pipelined_calls_on_one_connection_all_complete() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "second")
        results: dict[int, str] = {}

        async def call(i: int) -> None:
            results[i] = (await remote.call(ECHO, Echo(text=f"m{i}"))).text

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(300):
                    tg.start_soon(call, i)
        assert results == {i: f"m{i}" for i in range(300)}
