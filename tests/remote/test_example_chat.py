"""examples/chat: real TCP clients talking through the chat server on an ephemeral port."""

from __future__ import annotations

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from examples.chat.server import run_chat

pytestmark = pytest.mark.anyio


class Client:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.lines = BufferedByteReceiveStream(stream)

    async def say(self, text: str) -> None:
        await self.stream.send(text.encode() + b"\n")

    async def read(self) -> str:
        with anyio.fail_after(10):
            return (await self.lines.receive_until(b"\n", 4096)).decode()


async def join(port: int) -> Client:
    return Client(await anyio.connect_tcp("127.0.0.1", port))


async def test_chat_room() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(run_chat, "127.0.0.1", 0)
        a = await join(port)
        assert await a.read() == "* welcome, guest1! 1 here"
        b = await join(port)
        assert await b.read() == "* welcome, guest2! 2 here"
        assert await a.read() == "* guest2 joined"

        await a.say("/nick alice")
        assert await a.read() == "* guest1 is now alice"
        assert await b.read() == "* guest1 is now alice"

        await a.say("hello, room")
        assert await b.read() == "<alice> hello, room"

        await b.say("/nick alice")
        assert await b.read() == "* the nick alice is taken"
        await b.say("/nick")
        assert await b.read() == "* usage: /nick NAME"

        c = await join(port)
        assert await c.read() == "* welcome, guest3! 3 here"
        assert await a.read() == "* guest3 joined"
        assert await b.read() == "* guest3 joined"
        await c.say("/quit")
        assert await a.read() == "* guest3 left"
        with pytest.raises(anyio.IncompleteRead):
            await c.read()  # the server hung up on c
        await c.stream.aclose()

        await b.stream.aclose()  # hanging up works like /quit
        assert await a.read() == "* guest2 left"
        await a.stream.aclose()
        tg.cancel_scope.cancel()
