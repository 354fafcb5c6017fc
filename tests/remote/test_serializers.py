"""Serializers are plugins: the sender picks one by message class and names it in the envelope,
the receiver looks it up by that name; replies come back with the same serializer.

These tests register a JSON serializer for dataclasses on a ``PluginRegistry`` by hand;
``test_serializer_plugin.py`` installs one as a third-party distribution instead.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar, Self, TypeVar

import pytest

from cinema import Actor, ActorSystem, Context, PluginRegistry, handler
from cinema.abc import Serializer, hookimpl
from cinema.remote import (
    LocalNode,
    MessageRouter,
    PayloadDecodeError,
    ProtocolError,
    RemoteClient,
    RemoteServer,
    TcpTransport,
    UnknownMessageType,
    UnknownSerializer,
    rpc,
)
from cinema.remote._codec import decode_payload
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult

T = TypeVar("T")


class JsonDataclasses(Serializer):
    """Dataclasses as JSON objects, named ``<module>.<qualname>``."""

    name: ClassVar[str] = "test-json"

    def handles(self, cls: type) -> bool:
        return isinstance(cls, type) and dataclasses.is_dataclass(cls)

    def type_name(self, cls: type) -> str:
        if not self.handles(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        return f"{cls.__module__}.{cls.__qualname__}"

    def encode(self, message: object) -> bytes:
        if not dataclasses.is_dataclass(message) or isinstance(message, type):
            raise TypeError(f"{message!r} is not a dataclass instance")
        return json.dumps(dataclasses.asdict(message)).encode()

    def decode(self, data: bytes, cls: type[T]) -> T:
        try:
            return cls(**json.loads(data))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"not a {cls.__qualname__}: {exc}") from exc


class Renamed(JsonDataclasses):
    """The same encoding under a name the server does not know."""

    name: ClassVar[str] = "test-json-unknown-to-the-server"


@dataclass
class Deposit:
    account: str
    amount: int


@dataclass
class Balance:
    account: str
    total: int


@dataclass
class Audit:
    note: str


class Bank(Actor):
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.notes: list[str] = []

    @handler
    def deposit(self, msg: Deposit, ctx: Context[Self]) -> Balance:
        self.totals[msg.account] = self.totals.get(msg.account, 0) + msg.amount
        return Balance(msg.account, self.totals[msg.account])

    @handler
    def audit(self, msg: Audit, ctx: Context[Self]) -> AddResult:
        # A reply class the request's serializer does not handle: protobuf carries it.
        self.notes.append(msg.note)
        return AddResult(value=len(self.notes))

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> Balance:
        # And the other way round: a protobuf request answered with a dataclass.
        return Balance("proto", msg.n)


def plugin_with(*serializers: Serializer) -> object:
    def cinema_serializers() -> Iterable[Serializer]:
        return list(serializers)

    return SimpleNamespace(cinema_serializers=hookimpl(cinema_serializers))


def registry_with(*serializers: Serializer) -> PluginRegistry:
    registry = PluginRegistry()
    registry.register(plugin_with(*serializers), name="test-serializers")
    return registry


DEPOSIT = rpc(Deposit, Balance)


@asynccontextmanager
async def bank_server(registry: PluginRegistry) -> AsyncIterator[tuple[RemoteServer, Bank]]:
    bank = Bank()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(bank)
        node = LocalNode("bank", plugins=registry)
        node.expose("bank", addr)
        router = (
            MessageRouter()
            .route(Deposit, node.handler(addr, Deposit))
            .route(Audit, node.handler(addr, Audit))
            .route(Add, node.handler(addr, Add))
            .build()
        )
        async with await RemoteServer.bind("127.0.0.1:0", router) as server:
            yield server, bank


@asynccontextmanager
async def client_of(server: RemoteServer, **options: Any) -> AsyncIterator[RemoteClient]:
    conn = await TcpTransport().connect(server.address)
    async with RemoteClient(conn, **options) as client:
        yield client


def test_registry_lookup_by_name_and_class() -> None:
    json_ = JsonDataclasses()
    registry = registry_with(json_)
    assert registry.serializer("test-json") is json_
    assert registry.serializers["test-json"].handles(Deposit)
    node = LocalNode("n", plugins=registry)
    assert node.serializers.for_class(Deposit) is json_
    assert node.serializers.for_class(Add).name == "protobuf"  # protobuf first for its classes
    assert node.serializers.named("").name == "protobuf"
    with pytest.raises(UnknownSerializer, match="no serializer handles"):
        node.serializers.for_class(int)
    with pytest.raises(UnknownSerializer, match="'nope'"):
        node.serializers.named("nope")
    with pytest.raises(TypeError, match="does not handle"):
        node.serializers.for_class(Add, json_)


@pytest.mark.anyio
async def test_dataclass_messages_end_to_end_with_a_registered_serializer() -> None:
    registry = registry_with(JsonDataclasses())
    async with (
        bank_server(registry) as (server, bank),
        client_of(server, plugins=registry) as client,
    ):
        remote = client.remote_addr(Bank, "bank", "bank")
        assert await remote.call(DEPOSIT, Deposit("alice", 5)) == Balance("alice", 5)
        raw = await remote.send(Deposit("alice", 2))
        assert raw.serializer == "test-json"  # the reply uses the request's serializer
        assert raw.message_type == f"{__name__}.Balance"
        assert json.loads(raw.payload) == {"account": "alice", "total": 7}
        # The untyped form knows the request's class only; a Balance reply needs an Rpc.
        with pytest.raises(ProtocolError, match="rpc"):
            await remote.call(Deposit("bob", 1))
        # By type route too (no actor name), and one-way.
        routed = client.remote_addr(Bank, "bank", "")
        assert await routed.call(DEPOSIT, Deposit("bob", 1)) == Balance("bob", 2)
        await routed.do_send(Audit("one-way"))
        # A reply class the request's serializer cannot carry goes by protobuf.
        assert await remote.call(rpc(Audit, AddResult), Audit("x")) == AddResult(value=2)
        assert bank.notes == ["one-way", "x"]
        assert await remote.call(rpc(Add, Balance), Add(n=3)) == Balance("proto", 3)


@pytest.mark.anyio
async def test_protobuf_envelopes_keep_an_empty_serializer_field() -> None:
    registry = registry_with(JsonDataclasses())
    async with (
        bank_server(registry) as (server, _bank),
        client_of(server, plugins=registry) as client,
    ):
        remote = client.remote_addr(Bank, "bank", "bank")
        sent = client._envelope("bank", "bank", Add(n=1), pb.ENVELOPE_KIND_REQUEST)
        assert sent.serializer == ""
        assert sent.message_type == "remote_test.Add"
        raw = await remote.send(Audit("y"))
        assert raw.serializer == ""
        assert raw.message_type == "remote_test.AddResult"


@pytest.mark.anyio
async def test_unknown_serializer_name_gets_a_typed_error_reply() -> None:
    registry = registry_with(JsonDataclasses())
    async with (
        bank_server(registry) as (server, _bank),
        client_of(server, plugins=registry) as client,
    ):
        remote = client.remote_addr(Bank, "bank", "bank", serializer=Renamed())
        with pytest.raises(UnknownSerializer, match="test-json-unknown-to-the-server"):
            await remote.call(DEPOSIT, Deposit("a", 1))
        routed = client.remote_addr(Bank, "bank", "", serializer=Renamed())
        with pytest.raises(UnknownSerializer) as caught:
            await routed.send(Deposit("a", 1))
        assert isinstance(caught.value, UnknownMessageType)  # what older clients see
        # The connection is fine afterwards.
        plain = client.remote_addr(Bank, "bank", "bank", serializer="protobuf")
        assert await plain.call(rpc(Add, Balance), Add(n=1)) == Balance("proto", 1)


@pytest.mark.anyio
async def test_client_without_the_plugin_cannot_pick_a_serializer_for_dataclasses() -> None:
    registry = registry_with(JsonDataclasses())
    async with (
        bank_server(registry) as (server, _bank),
        client_of(server, plugins=PluginRegistry()) as client,
    ):
        remote = client.remote_addr(Bank, "bank", "bank")
        with pytest.raises(UnknownSerializer, match="no serializer handles"):
            await remote.call(DEPOSIT, Deposit("a", 1))
        with pytest.raises(UnknownSerializer):
            client.remote_addr(Bank, "bank", "bank", serializer="test-json")
        # An explicit instance works without registration, and its replies decode with it.
        chosen = client.remote_addr(Bank, "bank", "bank", serializer=JsonDataclasses())
        assert await chosen.call(DEPOSIT, Deposit("a", 1)) == Balance("a", 1)


@pytest.mark.anyio
async def test_undecodable_payload_and_unhandled_type() -> None:
    registry = registry_with(JsonDataclasses())
    async with (
        bank_server(registry) as (server, _bank),
        client_of(server, plugins=registry) as client,
    ):
        conn = client._conn
        await client._ensure_ready()
        bad = pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            actor_name="bank",
            message_type=f"{__name__}.Deposit",
            payload=b'{"account": 1, "wrong": 2}',
            serializer="test-json",
        )
        reply = await client._request(pb.Frame(envelope=bad), 10.0)
        assert reply.envelope.error.kind == pb.ERROR_KIND_DECODE_ERROR
        # A protobuf type named with the JSON serializer: it does not handle that class.
        bad.message_type, bad.payload = "remote_test.Add", b"{}"
        reply = await client._request(pb.Frame(envelope=bad), 10.0)
        assert reply.envelope.error.kind == pb.ERROR_KIND_UNKNOWN_MESSAGE_TYPE
        assert "does not handle" in reply.envelope.error.message
        assert not client.is_closed
        assert conn is client._conn
    with pytest.raises(PayloadDecodeError):
        decode_payload(JsonDataclasses(), b"[", Deposit)
