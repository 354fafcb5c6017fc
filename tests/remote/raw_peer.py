"""A raw peer for the tests that play a hostile or broken client: frames written and read by
hand over a plain anyio socket stream."""

from __future__ import annotations

import os
import struct
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import SocketStream

from cinema.remote import FrameDecoder, RemoteServer
from cinema.remote._tcp import parse_host_port
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult
from tests.remote.support import ADD, Calculator, connect


@asynccontextmanager
async def raw(server: RemoteServer, local_host: str | None = None) -> AsyncIterator[SocketStream]:
    host, port = parse_host_port(server.address)
    async with await anyio.connect_tcp(host, port, local_host=local_host) as stream:
        yield stream


async def send(stream: SocketStream, frame: pb.Frame | bytes) -> None:
    body = frame if isinstance(frame, bytes) else frame.SerializeToString()
    await stream.send(struct.pack(">I", len(body)) + body)


# Bytes received beyond the frame a test asked for (replies may arrive together).
_leftovers: weakref.WeakKeyDictionary[SocketStream, FrameDecoder] = weakref.WeakKeyDictionary()


async def receive(stream: SocketStream) -> pb.Frame | None:
    """The next frame, or None at end of stream."""
    decoder = _leftovers.setdefault(stream, FrameDecoder())
    with anyio.fail_after(10):
        while (data := decoder.next_frame()) is None:
            try:
                decoder.feed(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                assert decoder.buffered == 0, "connection ended mid-frame"
                return None
    return pb.Frame.FromString(data)


async def hello(stream: SocketStream) -> None:
    await send(stream, pb.Frame(hello=pb.Hello(protocol_version=1, client_nonce=os.urandom(16))))
    welcome = await receive(stream)
    assert welcome is not None
    assert welcome.WhichOneof("body") == "welcome"


async def expect_close(stream: SocketStream, kind: int) -> pb.Close:
    frame = await receive(stream)
    assert frame is not None
    assert frame.WhichOneof("body") == "close", frame
    assert frame.close.error.kind == kind, frame.close
    assert await receive(stream) is None  # and then the connection ends
    return frame.close


async def still_serving(server: RemoteServer) -> None:
    async with connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        assert isinstance(await remote.call(ADD, Add(n=0)), AddResult)


def request(message_type: str, payload: bytes, cid: int = 1) -> pb.Frame:
    return pb.Frame(
        envelope=pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            correlation_id=cid,
            message_type=message_type,
            payload=payload,
        )
    )
