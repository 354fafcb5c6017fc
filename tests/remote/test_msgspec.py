"""Dataclass ``Message[R]`` classes over the wire: the msgspec serializer, ``LocalNode.serve`` and
``call(msg)`` typed by ``R``; only the classes a served actor handles are ever decoded."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

import anyio
import pytest

from cinema import Actor, ActorSystem, Context, Message, Terminated, handler, load_plugins
from cinema.remote import (
    FrameTooLarge,
    LocalNode,
    MsgspecSerializer,
    PayloadDecodeError,
    ProtocolError,
    RemoteClient,
    RemoteServer,
    TcpTransport,
    UnknownActor,
    UnknownMessageType,
    rpc,
)
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add, AddResult

pytestmark = pytest.mark.anyio

DEADLINE = 10.0


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Shape:
    name: str
    points: list[Point]


@dataclass
class Everything(Message["Everything"]):  # replies with itself (a string forward reference)
    text: str
    number: int
    ratio: float
    flag: bool
    raw: bytes
    nothing: None
    maybe: int | None
    color: Color
    level: Level
    when: datetime.datetime
    naive: datetime.datetime
    day: datetime.date
    span: datetime.timedelta
    ident: uuid.UUID
    amount: Decimal
    nested: Shape
    items: list[Point]
    pair: tuple[int, str]
    many: tuple[int, ...]
    tags: set[str]
    by_name: dict[str, Point]
    by_number: dict[int, list[str]]
    defaulted: list[int] = field(default_factory=list)


def everything() -> Everything:
    return Everything(
        text="héllo ✓",
        number=-(2**40),
        ratio=0.25,
        flag=True,
        raw=b"\x00\xff",
        nothing=None,
        maybe=None,
        color=Color.GREEN,
        level=Level.HIGH,
        when=datetime.datetime(2026, 12, 1, 12, 30, 5, 123456, tzinfo=datetime.UTC),
        naive=datetime.datetime(2026, 1, 2, 3, 4, 5),
        day=datetime.date(2026, 2, 28),
        span=datetime.timedelta(days=2, seconds=7, microseconds=9),
        ident=uuid.UUID(int=12345),
        amount=Decimal("12.50"),
        nested=Shape("tri", [Point(0, 0), Point(1, 0), Point(0, 1)]),
        items=[Point(3, 4)],
        pair=(7, "seven"),
        many=(1, 2, 3),
        tags={"a", "b"},
        by_name={"origin": Point(0, 0)},
        by_number={1: ["one"], 2: []},
        defaulted=[5],
    )


@dataclass
class AddItem(Message[int]):
    name: str
    qty: int


@dataclass
class ListItems(Message[list[Point]]):
    pass


@dataclass
class Totals(Message[dict[str, int]]):
    pass


@dataclass
class Paint(Message[Color]):
    color: Color


@dataclass
class Forget(Message[None]):
    pass


@dataclass
class Lie(Message[int]):  # the handler answers a str: the caller must not get it as an int
    pass


@dataclass
class Loose(Message[Any]):
    pass


@dataclass
class Scale(Message[Shape]):
    shape: Shape
    factor: int


@dataclass
class Found:
    key: str
    value: int


@dataclass
class Missing:
    key: str


@dataclass
class Lookup(Message[Found | Missing | None]):  # a union of classes: the reply's name picks
    key: str


@dataclass
class Unhandled(Message[int]):
    pass


@dataclass
class Command(Message[str]):
    pass


@dataclass
class Launch(Command):
    target: str


@dataclass
class Fixed(Message[str]):
    __wire_name__ = "shop.v1.Fixed"
    text: str


@dataclass
class Big(Message[int]):
    blob: bytes


class Store(Actor):
    def __init__(self) -> None:
        self.items: dict[str, int] = {}
        self.forgotten = 0

    @handler
    def everything(self, msg: Everything, ctx: Context[Self]) -> Everything:
        return msg

    @handler
    def add(self, msg: AddItem, ctx: Context[Self]) -> int:
        self.items[msg.name] = self.items.get(msg.name, 0) + msg.qty
        return len(self.items)

    @handler
    def points(self, msg: ListItems, ctx: Context[Self]) -> list[Point]:
        return [Point(i, qty) for i, qty in enumerate(self.items.values())]

    @handler
    def totals(self, msg: Totals, ctx: Context[Self]) -> dict[str, int]:
        return dict(self.items)

    @handler
    def paint(self, msg: Paint, ctx: Context[Self]) -> Color:
        return msg.color

    @handler
    def forget(self, msg: Forget, ctx: Context[Self]) -> None:
        self.forgotten += 1

    @handler
    def lie(self, msg: Lie, ctx: Context[Self]) -> str:
        return "not an int"

    @handler
    def loose(self, msg: Loose, ctx: Context[Self]) -> object:
        return {"any": [1, "two"]}

    @handler
    async def scale(self, msg: Scale, ctx: Context[Self]) -> Shape:
        points = [Point(p.x * msg.factor, p.y * msg.factor) for p in msg.shape.points]
        return Shape(msg.shape.name, points)

    @handler
    def lookup(self, msg: Lookup, ctx: Context[Self]) -> Found | Missing | None:
        if msg.key == "none":
            return None
        if msg.key in self.items:
            return Found(msg.key, self.items[msg.key])
        return Missing(msg.key)

    @handler
    def command(self, msg: Command, ctx: Context[Self]) -> str:
        return type(msg).__qualname__

    @handler
    def fixed(self, msg: Fixed, ctx: Context[Self]) -> str:
        return msg.text.upper()

    @handler
    def big(self, msg: Big, ctx: Context[Self]) -> int:
        return len(msg.blob)

    @handler
    def add_proto(self, msg: Add, ctx: Context[Self]) -> AddResult:
        return AddResult(value=msg.n * 10)


@asynccontextmanager
async def store_server(
    **serve: Any,
) -> AsyncIterator[tuple[RemoteClient, Store, LocalNode]]:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        store = Store()
        addr = system.spawn(store)
        node = LocalNode("shop")
        node.serve("store", addr, **serve)
        async with await RemoteServer.bind("127.0.0.1:0", node) as server:
            conn = await TcpTransport().connect(server.address)
            async with RemoteClient(conn) as client:
                with anyio.fail_after(DEADLINE):
                    yield client, store, node


# -- the serializer alone --------------------------------------------------------------------


def test_every_supported_field_type_round_trips() -> None:
    serializer = MsgspecSerializer()
    message = everything()
    assert serializer.handles(Everything)
    data = serializer.encode(message)
    assert serializer.decode(data, Everything) == message
    assert serializer.type_name(Everything) == "Everything"


def test_values_decode_as_type_expressions() -> None:
    serializer = MsgspecSerializer()
    data = serializer.encode([Point(1, 2)])
    assert serializer.decode_as(data, list[Point]) == [Point(1, 2)]
    assert serializer.decode_as(serializer.encode(None), int | None) is None
    with pytest.raises(ValueError, match="Expected `int`"):
        serializer.decode_as(serializer.encode(["x"]), list[int])


def test_wire_names_are_the_qualname_or_the_declared_one() -> None:
    serializer = MsgspecSerializer()
    assert serializer.type_name(AddItem) == "AddItem"
    assert serializer.type_name(Fixed) == "shop.v1.Fixed"
    assert serializer.type_name(int) == "int"


def test_what_it_refuses() -> None:
    serializer = MsgspecSerializer()

    class Plain:
        pass

    assert not serializer.handles(Plain)  # not a dataclass: msgspec would guess, we do not
    assert not serializer.handles(object)
    assert not serializer.handles(Add)  # protobuf is the protobuf serializer's
    assert not serializer.handles(Message)
    with pytest.raises(TypeError):
        serializer.type_name(Plain)
    with pytest.raises(TypeError, match="cannot encode"):
        serializer.encode(Plain())
    with pytest.raises(TypeError, match="not a dataclass"):
        serializer.decode(b"\x80", Plain)
    with pytest.raises(ValueError, match=r"Expected `str`, got `int` - at `\$\.name`"):
        serializer.decode(serializer.encode({"name": 1, "qty": 1}), AddItem)
    with pytest.raises(ValueError, match=r"truncated|Input data"):
        serializer.decode(b"\x82\xa4name", AddItem)


def test_it_is_installed_as_the_msgspec_plugin() -> None:
    assert isinstance(load_plugins().serializer("msgspec"), MsgspecSerializer)


# -- over the wire -----------------------------------------------------------------------------


async def test_round_trip_of_every_field_type_over_the_wire() -> None:
    async with store_server() as (client, _store, _node):
        remote = client.remote_addr(Store, "shop", "store")
        message = everything()
        reply = await remote.call(message)
        assert reply == message
        assert type(reply) is Everything
        raw = await remote.send(message)
        assert (raw.serializer, raw.message_type) == ("msgspec", "Everything")


async def test_replies_are_decoded_as_the_messages_reply_type() -> None:
    async with store_server() as (client, store, _node):
        remote = client.remote_addr(Store, "shop", "store")
        assert await remote.call(AddItem("tea", 2)) == 1
        assert await remote.call(AddItem("jam", 5)) == 2
        assert await remote.call(ListItems()) == [Point(0, 2), Point(1, 5)]
        assert await remote.call(Totals()) == {"tea": 2, "jam": 5}
        assert await remote.call(Paint(Color.RED)) is Color.RED
        forget: object = Forget()  # (mypy: a Message[None] call's value is not to be used)
        assert await remote.call(forget) is None
        assert await remote.call(Loose()) == {"any": [1, "two"]}
        scaled = await remote.call(Scale(Shape("l", [Point(1, 2)]), 3))
        assert scaled == Shape("l", [Point(3, 6)])
        assert await remote.call(Fixed("tea")) == "TEA"
        # One actor serves protobuf and dataclass messages side by side.
        assert (await remote.call(rpc(Add, AddResult), Add(n=4))).value == 40
        await remote.do_send(Forget())
        await remote.call(Forget())
        assert store.forgotten == 3  # the one-way Forget was handled too, in order


async def test_a_union_of_classes_as_reply_type() -> None:
    async with store_server() as (client, _store, _node):
        remote = client.remote_addr(Store, "shop", "store")
        await remote.call(AddItem("tea", 2))
        assert await remote.call(Lookup("tea")) == Found("tea", 2)
        assert await remote.call(Lookup("jam")) == Missing("jam")
        assert await remote.call(Lookup("none")) is None


async def test_a_reply_that_is_not_the_declared_type_is_a_protocol_error() -> None:
    async with store_server() as (client, _store, _node):
        remote = client.remote_addr(Store, "shop", "store")
        with pytest.raises(ProtocolError, match="not a int"):
            await remote.call(Lie())
        assert await remote.call(AddItem("still", 1)) == 1  # the connection goes on


async def test_a_type_the_actor_does_not_handle_is_refused() -> None:
    async with store_server() as (client, _store, node):
        remote = client.remote_addr(Store, "shop", "store")
        with pytest.raises(UnknownMessageType, match="does not handle 'Unhandled'"):
            await remote.call(Unhandled())
        # A subclass of a handled base is decoded only when registered.
        assert await remote.call(Command()) == "Command"
        with pytest.raises(UnknownMessageType, match="'Launch'"):
            await remote.call(Launch("moon"))
        assert "Launch" not in node.served_types("store")


async def test_a_subclass_registered_with_types_is_accepted() -> None:
    async with store_server(types=[Launch]) as (client, _store, _node):
        remote = client.remote_addr(Store, "shop", "store")
        assert await remote.call(Launch("moon")) == "Launch"


async def test_a_name_the_node_does_not_serve_is_unknown_actor() -> None:
    async with store_server() as (client, _store, _node):
        with pytest.raises(UnknownActor, match="'stroe'"):
            await client.remote_addr(Store, "shop", "stroe").call(AddItem("tea", 1))
        assert await client.remote_addr(Store, "shop", "store").call(AddItem("tea", 1)) == 1


async def test_frames_are_size_limited_as_any_other() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        node = LocalNode("shop")
        node.serve("store", system.spawn(Store()))
        async with await RemoteServer.bind("127.0.0.1:0", node, max_frame_size=4096) as server:
            conn = await TcpTransport().connect(server.address)
            async with RemoteClient(conn, max_frame_size=4096) as client:
                remote = client.remote_addr(Store, "shop", "store")
                with anyio.fail_after(DEADLINE):
                    with pytest.raises(FrameTooLarge):
                        await remote.call(Big(b"x" * 5000))
                    assert await remote.call(Big(b"x" * 1000)) == 1000


# -- the server side without a network -------------------------------------------------------


def envelope(type_name: str, payload: bytes, actor: str = "store") -> pb.Envelope:
    return pb.Envelope(
        kind=pb.ENVELOPE_KIND_REQUEST,
        correlation_id=3,
        actor_name=actor,
        message_type=type_name,
        payload=payload,
        serializer="msgspec",
    )


async def test_payloads_are_validated_against_the_handled_class() -> None:
    serializer = MsgspecSerializer()
    async with ActorSystem() as system:
        store = Store()
        node = LocalNode("shop")
        node.serve("store", system.spawn(store))
        good = await node.handle(envelope("AddItem", serializer.encode(AddItem("tea", 1))))
        assert good is not None
        assert serializer.decode(good.payload, int) == 1
        with pytest.raises(PayloadDecodeError, match="Expected `int`, got `str`"):
            await node.handle(envelope("AddItem", serializer.encode({"name": "x", "qty": "1"})))
        with pytest.raises(PayloadDecodeError):
            await node.handle(envelope("AddItem", b"\xc1garbage"))
        # A class of this process that the actor does not handle is never built from a name.
        with pytest.raises(UnknownMessageType):
            await node.handle(envelope("Unhandled", serializer.encode(Unhandled())))
        with pytest.raises(UnknownMessageType):
            await node.handle(envelope("builtins.object", b"\x80"))
        assert store.items == {"tea": 1}


@dataclass
class Impostor(Message[int]):
    __wire_name__ = "AddItem"


class Clash(Actor):
    @handler
    def add(self, msg: AddItem, ctx: Context[Self]) -> int:
        return 0

    @handler
    def other(self, msg: Impostor, ctx: Context[Self]) -> int:
        return 1


class Watcher(Actor):
    @handler
    def add(self, msg: AddItem, ctx: Context[Self]) -> int:
        return 0

    @handler
    def gone(self, msg: Terminated, ctx: Context[Self]) -> None:
        pass


async def test_cinemas_own_messages_are_never_served() -> None:
    async with ActorSystem() as system:
        node = LocalNode("shop")
        node.serve("watcher", system.spawn(Watcher()))
        assert dict(node.served_types("watcher")) == {"AddItem": AddItem}


async def test_serve_refuses_mistakes_and_serves_only_what_can_come_from_outside() -> None:
    async with ActorSystem() as system:
        node = LocalNode("shop")
        with pytest.raises(ValueError, match="both named 'AddItem'"):
            node.serve("clash", system.spawn(Clash()))
        with pytest.raises(ValueError, match="no handler for"):
            node.serve("store", system.spawn(Store()), types=[Unhandled])
        node.serve("store", system.spawn(Store()))
        names = set(node.served_types("store"))
        assert {"Everything", "AddItem", "shop.v1.Fixed", "remote_test.Add"} <= names
        assert "store" in node.exposed
        assert node.unexpose("store") is True
        with pytest.raises(UnknownActor):
            await node.handle(envelope("AddItem", MsgspecSerializer().encode(AddItem("x", 1))))
