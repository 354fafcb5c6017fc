"""A handler's ``cinema.ReplyError`` crosses the wire as an expected outcome: the caller gets the
same type with the same message (or a ``RemoteReplyError`` naming a type it does not define),
the remote actor keeps its state, and nothing is logged as a crash."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

import anyio
import pytest

from cinema import Actor, ActorSystem, Addr, Context, ReplyError, handler
from cinema.cluster import ClusterClient, ClusterNode
from cinema.remote import (
    LocalNode,
    MessageRouter,
    RemoteHandlerError,
    RemoteReplyError,
    RemoteServer,
    rpc,
)
from cinema.remote._wire import MAX_ERROR_TEXT, error_from_wire
from cinema.remote.proto import wire_pb2 as pb
from tests.acceptance.remote_support import free_port
from tests.remote.protos.remote_test_pb2 import Add, AddResult, Echo, Fail, Sleep
from tests.remote.raw_peer import hello, raw, receive, send
from tests.remote.support import connect

pytestmark = pytest.mark.anyio

ADD = rpc(Add, AddResult)
LOOKUP = rpc(Echo, Echo)
SLOW_LOOKUP = rpc(Sleep, Echo)
DEADLINE = 10.0  # only turns a hang into a failure


class NotFound(ReplyError):
    """Defined on both sides (one process plays server and client here)."""


class TooMany(ReplyError):
    """Takes other arguments than a message: rebuilt on the caller without its ``__init__``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} items")
        self.limit = limit


class OutOfStock(ReplyError):
    """Stands for a type only the server defines: it travels as "warehouse.OutOfStock", a name
    no class of this process was registered under (it was registered under its real module)."""


OutOfStock.__module__ = "warehouse"


class Shelf(Actor):
    """Counts items (``Add``); answers lookups (``Echo``: only "apple" is there) with the item or
    ``NotFound``; ``Fail`` answers ``OutOfStock``, ``Sleep`` ``NotFound`` after awaiting."""

    def __init__(self) -> None:
        self.count = 0

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> AddResult:
        if self.count + msg.n > 100:
            raise TooMany(100)
        self.count += msg.n
        return AddResult(value=self.count)

    @handler
    def lookup(self, msg: Echo, ctx: Context[Self]) -> Echo:
        if msg.text != "apple":
            raise NotFound(f"no item {msg.text!r}")
        return Echo(text=msg.text)

    @handler
    def fail(self, msg: Fail, ctx: Context[Self]) -> None:
        raise OutOfStock(msg.reason)

    @handler
    async def slow_lookup(self, msg: Sleep, ctx: Context[Self]) -> Echo:
        await anyio.sleep(msg.seconds)
        raise NotFound("not even after waiting")


def shelf_router(node: LocalNode, addr: Addr[Shelf]) -> MessageRouter:
    router = MessageRouter(node)
    for cls in (Add, Echo, Fail, Sleep):
        router.route(cls, node.handler(addr, cls))
    return router


@asynccontextmanager
async def shelf_server() -> AsyncIterator[tuple[RemoteServer, Addr[Shelf]]]:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Shelf())
        node = LocalNode("store")
        node.expose("shelf", addr)
        async with await RemoteServer.bind("127.0.0.1:0", shelf_router(node, addr).build()) as srv:
            yield srv, addr


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_the_caller_gets_the_same_type_and_the_actor_goes_on(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with shelf_server() as (server, addr), connect(server) as client:
        shelf = client.remote_addr(Shelf, "store", "shelf")
        assert (await shelf.call(ADD, Add(n=2))).value == 2
        with pytest.raises(NotFound) as caught:
            await shelf.call(LOOKUP, Echo(text="pear"))
        assert type(caught.value) is NotFound
        assert str(caught.value) == "no item 'pear'"
        # The raw send raises it too; the connection goes on and the actor kept its state.
        with pytest.raises(NotFound, match="no item 'plum'"):
            await shelf.send(Echo(text="plum"))
        assert (await shelf.call(LOOKUP, Echo(text="apple"))).text == "apple"
        assert (await shelf.call(ADD, Add(n=3))).value == 5
        assert addr.is_alive
    assert errors_logged(logs) == []
    assert "answered tests.remote.test_reply_errors.NotFound" in logs.text


async def test_an_async_handler_and_a_type_with_its_own_init(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with shelf_server() as (server, addr), connect(server) as client:
        shelf = client.remote_addr(Shelf, "store", "shelf")
        with pytest.raises(NotFound, match=r"^not even after waiting$"):
            await shelf.call(SLOW_LOOKUP, Sleep(seconds=0))
        assert (await shelf.call(ADD, Add(n=100))).value == 100
        with pytest.raises(TooMany) as caught:
            await shelf.call(ADD, Add(n=1))
        assert str(caught.value) == "more than 100 items"
        assert not hasattr(caught.value, "limit")  # made without calling TooMany.__init__
        assert (await shelf.call(ADD, Add(n=0))).value == 100
        assert addr.is_alive
    assert errors_logged(logs) == []


async def test_a_type_the_caller_does_not_define_is_a_remote_reply_error(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with shelf_server() as (server, addr), connect(server) as client:
        shelf = client.remote_addr(Shelf, "store", "shelf")
        with pytest.raises(RemoteReplyError) as caught:
            await shelf.send(Fail(reason="none left of 'pear'"))
        exc = caught.value
        assert isinstance(exc, RemoteHandlerError)
        assert (exc.type_name, exc.message) == ("warehouse.OutOfStock", "none left of 'pear'")
        assert str(exc) == "remote handler answered warehouse.OutOfStock: none left of 'pear'"
        assert (await shelf.call(ADD, Add(n=1))).value == 1
        assert addr.is_alive
    assert errors_logged(logs) == []


async def test_a_one_way_message_answered_with_a_reply_error_is_not_a_crash(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with shelf_server() as (server, addr), connect(server) as client:
        shelf = client.remote_addr(Shelf, "store", "shelf")
        await shelf.call(ADD, Add(n=4))
        await shelf.do_send(Echo(text="pear"))
        await shelf.do_send(Fail(reason="gone"))
        # The connection and the actor are ordered: this reply comes after both were handled.
        assert (await shelf.call(ADD, Add(n=1))).value == 5
        assert addr.is_alive
    assert errors_logged(logs) == []
    assert "sent with do_send" in logs.text


async def test_the_error_reply_is_marked_expected_on_the_wire() -> None:
    async with shelf_server() as (server, _addr), raw(server) as stream:
        await hello(stream)
        request = pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            correlation_id=7,
            actor_name="shelf",
            message_type="remote_test.Echo",
            payload=Echo(text="pear").SerializeToString(),
        )
        await send(stream, pb.Frame(envelope=request))
        frame = await receive(stream)
        assert frame is not None
        error = frame.envelope.error
        assert (frame.envelope.correlation_id, error.kind) == (7, pb.ERROR_KIND_HANDLER_ERROR)
        assert error.expected
        assert error.type_name == "tests.remote.test_reply_errors.NotFound"
        assert error.message == "no item 'pear'"


def test_a_handler_error_without_the_flag_stays_a_handler_error() -> None:
    # What an older server sends for the same answer (it has no "expected" field).
    name = "tests.remote.test_reply_errors.NotFound"
    exc = error_from_wire(pb.Error(kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=name, message="m"))
    assert type(exc) is RemoteHandlerError
    # The flag means something only for handler errors.
    other = pb.Error(kind=pb.ERROR_KIND_INTERNAL, type_name=name, message="m", expected=True)
    assert type(error_from_wire(other)) is RemoteHandlerError
    # And only in replies to actor messages (extension handlers answer no reply errors).
    flagged = pb.Error(kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=name, message="m", expected=True)
    assert type(error_from_wire(flagged)) is NotFound
    assert type(error_from_wire(flagged, envelope=False)) is RemoteHandlerError


@pytest.mark.parametrize(
    "name",
    [
        "builtins.ValueError",  # defined here, but not a reply error
        "os.system",
        "cinema.ReplyError",  # the base class is no answer of its own
        "tests.remote.test_reply_errors.Shelf",
        "no.such.Module",
    ],
)
def test_only_reply_error_types_already_defined_are_rebuilt(name: str) -> None:
    error = pb.Error(kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=name, message="m", expected=True)
    exc = error_from_wire(error)
    assert type(exc) is RemoteReplyError
    assert (exc.type_name, exc.message) == (name, "m")


def test_peer_texts_are_clipped() -> None:
    hostile = "evil\n\x1b[2J" + "x" * 5000
    error = pb.Error(
        kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=hostile, message=hostile, expected=True
    )
    exc = error_from_wire(error)
    assert isinstance(exc, RemoteReplyError)
    assert exc.type_name.startswith("evil\\n\\x1b[2J")
    assert exc.type_name.endswith(f"...({len(hostile) - MAX_ERROR_TEXT} more)")
    assert "\n" not in exc.type_name
    assert len(exc.message) < MAX_ERROR_TEXT + 20
    # A known type's message is cut the same way.
    name = "tests.remote.test_reply_errors.NotFound"
    long = error_from_wire(
        pb.Error(kind=pb.ERROR_KIND_HANDLER_ERROR, type_name=name, message=hostile, expected=True)
    )
    assert type(long) is NotFound
    assert str(long) == hostile[:MAX_ERROR_TEXT] + f"...({len(hostile) - MAX_ERROR_TEXT} more)"


async def test_a_cluster_call_gets_the_same_type() -> None:
    port1, port2 = free_port(), free_port()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Shelf())
        local = LocalNode("node-2")
        local.expose("shelf", addr)
        router = shelf_router(local, addr).build()
        async with (
            ClusterNode("node-1", f"127.0.0.1:{port1}", gossip_interval=0.05) as node1,
            ClusterNode(
                "node-2",
                f"127.0.0.1:{port2}",
                handler=router,
                seeds=[f"127.0.0.1:{port1}"],
                gossip_interval=0.05,
            ) as node2,
        ):
            with anyio.fail_after(DEADLINE):
                await node2.register_actor("shelf", "Shelf")
                await node1.wait_until(lambda: node1.lookup_actor("shelf") is not None)
                shelf = ClusterClient(node1).remote_addr(Shelf, "shelf")
                assert (await shelf.call(ADD, Add(n=2))).value == 2
                with pytest.raises(NotFound, match=r"^no item 'pear'$"):
                    await shelf.call(LOOKUP, Echo(text="pear"))
                with pytest.raises(RemoteReplyError) as caught:
                    await shelf.call(rpc(Fail, Echo), Fail(reason="gone"))  # type: ignore[cinema-handler]  # on purpose
                assert caught.value.type_name == "warehouse.OutOfStock"
                assert (await shelf.call(ADD, Add(n=1))).value == 3
