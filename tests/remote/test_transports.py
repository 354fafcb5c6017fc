"""Transports: TCP address forms, Unix domain sockets, the extension API on one port."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import anyio
import pytest

from cinema import ActorSystem, PluginNotFound
from cinema._plugins import load_plugins
from cinema.remote import (
    LocalNode,
    RemoteClient,
    RemoteHandlerError,
    RemoteServer,
    TcpTransport,
    UnixTransport,
    UnknownExtension,
)
from cinema.remote._tcp import parse_host_port
from tests.remote.protos.remote_test_pb2 import Add
from tests.remote.support import ADD, Calculator, calc_server, connect

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_parse_host_port(address: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", ":80", "host:", "host:port", "h:70000"])
def test_parse_host_port_refuses_malformed(address: str) -> None:
    with pytest.raises(ValueError, match=r"'host:port'|port out of range"):
        parse_host_port(address)


def test_split_scheme() -> None:
    assert TcpTransport().split_scheme("tcp://a:1") == "a:1"
    assert TcpTransport().split_scheme("a:1") == "a:1"
    with pytest.raises(ValueError, match="unix://x"):
        TcpTransport().split_scheme("unix://x")


async def test_tcp_scheme_and_plain_addresses_connect() -> None:
    async with calc_server() as (server, _calc, _addr):
        for address in (server.address, f"tcp://{server.address}"):
            conn = await load_plugins().transport("tcp").connect(address)
            async with RemoteClient(conn) as client:
                remote = client.remote_addr(Calculator, "calc-server", "calculator")
                await remote.call(ADD, Add(n=1))


async def test_connect_to_nothing_raises_os_error() -> None:
    async with calc_server() as (server, _calc, _addr):
        address = server.address
    with pytest.raises(OSError, match=r"(?i)connect|refused"):
        await TcpTransport().connect(address)


async def test_unknown_scheme() -> None:
    async with ActorSystem() as system:
        node = LocalNode("n")
        with pytest.raises(PluginNotFound, match="'pigeon'"):
            await RemoteServer.bind("pigeon://coop", node.handler(system.spawn(Calculator()), Add))


@pytest.mark.skipif(sys.platform == "win32", reason="Unix domain sockets")
async def test_unix_socket_round_trip(tmp_path: Path) -> None:
    address = f"unix://{tmp_path / 'calc.sock'}"
    async with ActorSystem() as system:
        node = LocalNode("calc-server")
        calc = system.spawn(Calculator())
        node.expose("calculator", calc)
        handler = node.handler(calc, Add)
        async with await RemoteServer.bind(address, handler) as server:
            assert server.address == address
            conn = await load_plugins().transport("unix").connect(address)
            async with RemoteClient(conn) as client:
                remote = client.remote_addr(Calculator, "calc-server", "calculator")
                assert (await remote.call(ADD, Add(n=4))).value == 4
                assert (await remote.call(ADD, Add(n=4))).value == 8


async def test_unix_transport_refuses_tls_and_bad_addresses() -> None:
    with pytest.raises(ValueError, match="TLS"):
        await UnixTransport().connect("unix:///x", ssl_context=ssl.create_default_context())
    with pytest.raises(ValueError, match="unix://"):
        await UnixTransport().connect("/tmp/x")


async def test_extensions_share_the_port_with_actor_messages() -> None:
    seen: list[tuple[bytes, str]] = []
    oneway = anyio.Event()

    async def gossip(data: bytes, peer: str) -> bytes:
        seen.append((data, peer))
        if data == b"notify":
            oneway.set()
        return data[::-1]

    async def broken(data: bytes, peer: str) -> bytes | None:
        raise KeyError("nope")

    async with calc_server(extensions={"test.gossip": gossip}) as (server, _calc, _addr):
        server.add_extension("test.broken", broken)
        with pytest.raises(ValueError, match="already"):
            server.add_extension("test.gossip", gossip)
        async with connect(server) as client:
            assert await client.request_extension("test.gossip", b"abc") == b"cba"
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            assert (await remote.call(ADD, Add(n=1))).value == 1
            await client.send_extension("test.gossip", b"notify")
            with anyio.fail_after(10):
                await oneway.wait()
            with pytest.raises(UnknownExtension, match=r"test\.nothing"):
                await client.request_extension("test.nothing", b"")
            with pytest.raises(RemoteHandlerError, match="KeyError"):
                await client.request_extension("test.broken", b"")
        assert [data for data, _peer in seen] == [b"abc", b"notify"]
        assert seen[0][1].startswith("127.0.0.1:")
