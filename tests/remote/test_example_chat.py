"""examples/chat: real TCP clients talking through the chat server on an ephemeral port, in
process on every backend and as the real program (``python examples/chat/server.py``)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from examples.chat.server import run_chat

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "chat" / "server.py"


class Client:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.lines = BufferedByteReceiveStream(stream)

    async def say(self, text: str) -> None:
        await self.stream.send(text.encode() + b"\n")

    async def read(self) -> str:
        with anyio.fail_after(10):
            return (await self.lines.receive_until(b"\n", 4096)).decode()

    async def hung_up(self) -> bool:
        with anyio.fail_after(10):
            try:
                await self.lines.receive_until(b"\n", 4096)
            except anyio.IncompleteRead:
                return True
        return False


async def join(port: int) -> Client:
    return Client(await anyio.connect_tcp("127.0.0.1", port))


async def test_chat_room(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chat")
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
        assert await c.read() == "* goodbye, guest3"
        assert await c.hung_up()  # the server hung up on c
        assert await a.read() == "* guest3 left"
        await c.stream.aclose()

        await b.stream.aclose()  # hanging up works like /quit
        assert await a.read() == "* guest2 left"
        await a.stream.aclose()
        tg.cancel_scope.cancel()
    assert [r.getMessage() for r in caplog.records if r.name == "chat"] == [
        "guest1 joined (1 here)",
        "guest2 joined (2 here)",
        "guest1 is now alice",
        "guest3 joined (3 here)",
        "guest3 left (2 here)",
        "guest2 left (1 here)",
    ]


async def test_an_unknown_command_gets_the_usage_and_is_not_broadcast() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(run_chat, "127.0.0.1", 0)
        a = await join(port)
        assert await a.read() == "* welcome, guest1! 1 here"
        b = await join(port)
        assert await b.read() == "* welcome, guest2! 2 here"
        assert await a.read() == "* guest2 joined"
        for typo in ("/qiut", "/nickname bob", "/"):
            await b.say(typo)
            command = typo.partition(" ")[0]
            assert await b.read() == f"* unknown command {command}; commands: /nick NAME, /quit"
        await b.say("still here")  # the next line a receives is this one, not a typo
        assert await a.read() == "<guest2> still here"
        for client in (a, b):
            await client.stream.aclose()
        tg.cancel_scope.cancel()


async def test_clients_are_told_when_the_server_stops() -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: run_chat(port=0, stop=stop, task_status=task_status)
        )
        a = await join(port)
        assert await a.read() == "* welcome, guest1! 1 here"
        b = await join(port)
        assert await b.read() == "* welcome, guest2! 2 here"
        assert await a.read() == "* guest2 joined"
        stop.set()
        for client in (a, b):
            assert await client.read() == "* the server is stopping: bye"
            assert await client.hung_up()
            await client.stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the program picks its own backend
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_the_program_logs_and_stops_on_sigint_with_one_line(backend: str) -> None:
    argv = [sys.executable, "-W", "error", str(SERVER), "--port", "0", "--backend", backend]
    # Run from elsewhere: the script needs no package context.
    async with await anyio.open_process(argv, cwd=ROOT.parent) as server:
        try:
            rest, err = await _drive(server)
        finally:
            if server.returncode is None:  # a failure above: do not wait for it forever
                server.kill()
    assert rest == "chat server stopped"
    logged = [line.split(" ", 2)[2] for line in err.splitlines()]
    assert logged == [
        "guest1 joined (1 here)",
        "guest1 left (0 here)",
        "guest2 joined (1 here)",
        "stopping: telling 1 here",
    ], err


async def _drive(server: anyio.abc.Process) -> tuple[str, str]:
    """Talk to the chat program, stop it with SIGINT; return its last stdout line and stderr."""
    assert server.stdout is not None
    assert server.stderr is not None
    out = BufferedByteReceiveStream(server.stdout)
    with anyio.fail_after(30):
        first = (await out.receive_until(b"\n", 4096)).decode()
    assert first.startswith("chat on 127.0.0.1:"), first
    port = int(first.split()[2].rpartition(":")[2])
    a = await join(port)
    assert await a.read() == "* welcome, guest1! 1 here"
    await a.say("/quit")
    assert await a.read() == "* goodbye, guest1"
    # Once the server has hung up, guest1's Leave is in the room's mailbox before guest2's Join.
    assert await a.hung_up()
    b = await join(port)
    assert await b.read() == "* welcome, guest2! 1 here"
    server.send_signal(signal.SIGINT)
    assert await b.read() == "* the server is stopping: bye"
    assert await b.hung_up()
    await a.stream.aclose()
    await b.stream.aclose()
    with anyio.fail_after(30):
        rest = (await out.receive_until(b"\n", 4096)).decode()
        err = ""
        while chunk := await _receive_or_end(server.stderr):
            err += chunk
        assert await server.wait() == 0, err
    return rest, err


async def _receive_or_end(stream: anyio.abc.ByteReceiveStream) -> str:
    try:
        return (await stream.receive(65536)).decode()
    except anyio.EndOfStream:
        return ""
