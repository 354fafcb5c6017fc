"""Acceptance: API.md "Remote" and its fine print (with README "Remote Actors" and
docs/protocol.md), tested through the public API only, over loopback TCP with ephemeral ports."""

from __future__ import annotations

import inspect
import socket
from typing import assert_type

import anyio
import anyio.lowlevel
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message as ProtoMessage

import cinema
from cinema import ActorSystem
from cinema.remote import (
    ActorStopped,
    ConnectionLost,
    Envelope,
    LocalNode,
    MessageRouter,
    RemoteAddr,
    RemoteClient,
    RemoteHandlerError,
    RemoteServer,
    TcpTransport,
    Transport,
    UnknownActor,
    UnknownMessageType,
)
from tests.acceptance.remote_support import (
    ADD,
    ECHO,
    SLEEP,
    Add,
    AddResult,
    Barrier,
    BarrierEcho,
    Counter,
    Echo,
    Fail,
    Gated,
    Ping,
    Served,
    Sleep,
    Stop,
    TcpProxy,
    counter_router,
    serve_counter,
)
from tests.acceptance.remote_support import accept_races as accept_races
from tests.acceptance.remote_support import anyio_backend as anyio_backend
from tests.acceptance.support import Outcome

pytestmark = pytest.mark.anyio

# Generous deadlines: they only turn a hang into a failure; nothing is timed against them.
DEADLINE = 5.0


async def connect(server: RemoteServer) -> RemoteClient:
    return RemoteClient(await TcpTransport().connect(server.address))


def served_port(served: Served) -> int:
    return int(served.server.address.rsplit(":", 1)[1])


def is_closed(client: RemoteClient) -> bool:
    """``client.is_closed`` read through a call, so that mypy does not narrow it."""
    return client.is_closed


def mystery_message_class() -> type[ProtoMessage]:
    """A protobuf class that exists only in a private descriptor pool: no server has it."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="qa_mystery.proto", package="qa_mystery", syntax="proto3"
    )
    message = proto.message_type.add(name="Mystery")
    message.field.add(
        name="n",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("qa_mystery.Mystery"))


# --- public names and error hierarchy -------------------------------------------------------


def test_seed_names_exist() -> None:
    import cinema.remote as remote

    for name in (
        "LocalNode",
        "RemoteServer",
        "RemoteClient",
        "TcpTransport",
        "Transport",
        "MessageRouter",
        "Envelope",
        "RemoteAddr",
    ):
        assert name in remote.__all__, name
    assert issubclass(TcpTransport, Transport)


@pytest.mark.parametrize(
    "error",
    [ConnectionLost, UnknownActor, UnknownMessageType, RemoteHandlerError, ActorStopped],
)
def test_remote_errors_are_cinema_errors(error: type[Exception]) -> None:
    assert issubclass(error, cinema.CinemaError)


def test_remote_actor_stopped_is_the_core_one() -> None:
    assert ActorStopped is cinema.ActorStopped


# --- server: bind, run, async with -----------------------------------------------------------


async def test_bind_returns_once_listening_before_run() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        counter = Counter()
        addr = system.spawn(counter)
        node = LocalNode("server")
        node.expose("counter", addr)
        server = await RemoteServer.bind("127.0.0.1:0", counter_router(node, addr).build())
        assert not server.address.endswith(":0")  # the real ephemeral port
        # Connecting works before run(): bind returned with the socket listening.
        with anyio.fail_after(DEADLINE):
            conn = await TcpTransport().connect(server.address)
        client = RemoteClient(conn)
        remote = client.remote_addr(Counter, "server", "counter")
        outcome = Outcome()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(outcome.run, lambda: remote.call(ADD, Add(n=3)))
                await anyio.wait_all_tasks_blocked()
                assert not outcome.done.is_set()  # nobody serves yet
                tg.start_soon(server.run)
                await outcome.done.wait()
                assert outcome.error is None
                assert isinstance(outcome.value, AddResult)
                assert outcome.value.value == 3
                tg.cancel_scope.cancel()
        await client.aclose()


async def test_cancelling_run_fails_pending_and_later_calls_at_once() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        counter = Counter()
        addr = system.spawn(counter)
        server = await RemoteServer.bind(
            "127.0.0.1:0", counter_router(LocalNode("server", route_by_type=True), addr).build()
        )
        busy = await connect(server)
        idle = await connect(server)
        busy_remote = busy.remote_addr(Counter, "server", "counter")
        idle_remote = idle.remote_addr(Counter, "server", "counter")
        pending = Outcome()
        run_scope = anyio.CancelScope()
        run_returned = anyio.Event()

        async def run_server() -> None:
            with run_scope:
                await server.run()
            run_returned.set()

        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_server)
                assert (await idle_remote.call(ADD, Add(n=1))).value == 1
                # No timeout: the call may only end because the connection is closed.
                tg.start_soon(pending.run, lambda: busy_remote.call(SLEEP, Sleep(seconds=60)))
                await counter.sleeping.wait()
                run_scope.cancel()
                await pending.done.wait()
                await run_returned.wait()
            assert server.connection_count == 0
            assert isinstance(pending.error, ConnectionLost)
            # Both accepted connections were closed: later calls fail at once, on both.
            with pytest.raises(ConnectionLost):
                await busy_remote.call(ADD, Add(n=1))
            with pytest.raises(ConnectionLost):
                await idle_remote.call(ADD, Add(n=1))
            with pytest.raises(ConnectionLost):
                await idle_remote.do_send(Add(n=1))
        await busy.aclose()
        await idle.aclose()


async def test_leaving_async_with_server_fails_pending_requests() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        counter = Counter()
        addr = system.spawn(counter)
        server = await RemoteServer.bind(
            "127.0.0.1:0", counter_router(LocalNode("server", route_by_type=True), addr).build()
        )
        client = await connect(server)
        remote = client.remote_addr(Counter, "server", "counter")
        pending = Outcome()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                async with server:
                    assert (await remote.call(ADD, Add(n=2))).value == 2
                    tg.start_soon(pending.run, lambda: remote.call(SLEEP, Sleep(seconds=60)))
                    await counter.sleeping.wait()
                await pending.done.wait()
            assert isinstance(pending.error, ConnectionLost)
            with pytest.raises(ConnectionLost):
                await remote.send(Add(n=1))
        await client.aclose()


async def test_peer_going_away_fails_calls_without_timeout() -> None:
    """The server closes (aclose) while a call without timeout waits for its reply."""
    async with serve_counter() as served:
        client = await connect(served.server)
        remote = client.remote_addr(Counter, "server", "counter")
        pending = Outcome()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pending.run, lambda: remote.send(Sleep(seconds=60)))
                await served.counter.sleeping.wait()
                await served.server.aclose()
                await pending.done.wait()
            assert isinstance(pending.error, ConnectionLost)
            with pytest.raises(ConnectionLost):
                await remote.call(ADD, Add(n=1))
            assert is_closed(client)
        await client.aclose()


async def test_tcp_scheme_addresses() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        server = await RemoteServer.bind(
            "tcp://127.0.0.1:0", LocalNode("s", route_by_type=True).handler(addr, Add)
        )
        port = server.address.rsplit(":", 1)[1]
        async with server:
            conn = await TcpTransport().connect(f"tcp://127.0.0.1:{port}")
            async with RemoteClient(conn) as client:
                with anyio.fail_after(DEADLINE):
                    reply = await client.remote_addr(Counter, "s", "c").call(ADD, Add(n=8))
                assert reply.value == 8


# --- client: usable at once, aclose, async with ----------------------------------------------


async def test_client_is_usable_as_soon_as_constructed() -> None:
    async with serve_counter() as served:
        conn = await TcpTransport().connect(served.server.address)
        client = RemoteClient(conn)  # no start/connect/handshake step
        with anyio.fail_after(DEADLINE):
            envelope = await client.remote_addr(Counter, "server", "counter").send(Add(n=7))
        assert AddResult.FromString(envelope.payload).value == 7
        await client.aclose()


async def test_aclose_closes_and_fails_pending_and_later_calls() -> None:
    async with serve_counter() as served:
        client = await connect(served.server)
        remote = client.remote_addr(Counter, "server", "counter")
        assert not is_closed(client)
        pending = Outcome()
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pending.run, lambda: remote.call(SLEEP, Sleep(seconds=60)))
                await served.counter.sleeping.wait()
                await client.aclose()
                await pending.done.wait()
            assert isinstance(pending.error, ConnectionLost)
            assert is_closed(client)
            with pytest.raises(ConnectionLost):
                await remote.call(ADD, Add(n=1))


async def test_async_with_client_closes_it() -> None:
    async with serve_counter() as served:
        conn = await TcpTransport().connect(served.server.address)
        with anyio.fail_after(DEADLINE):
            async with RemoteClient(conn) as client:
                assert isinstance(client, RemoteClient)
                remote = client.remote_addr(Counter, "server", "counter")
                assert (await remote.call(ADD, Add(n=1))).value == 1
            assert client.is_closed
            with pytest.raises(ConnectionLost):
                await remote.call(ADD, Add(n=1))


# --- RemoteAddr: send, call, do_send ----------------------------------------------------------


async def test_remote_addr_send_returns_the_raw_reply_envelope() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        assert isinstance(remote, RemoteAddr)
        assert_type(remote, RemoteAddr[Counter])
        with anyio.fail_after(DEADLINE):
            envelope = await remote.send(Add(n=5))
        assert isinstance(envelope, Envelope)
        assert envelope.kind == 3  # ENVELOPE_KIND_REPLY (protocol.md)
        assert envelope.correlation_id >= 1
        assert envelope.message_type == "remote_test.AddResult"
        assert AddResult.FromString(envelope.payload).value == 5
        assert envelope.error.kind == 0  # no error


async def test_remote_addr_call_returns_the_typed_decoded_reply() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        with anyio.fail_after(DEADLINE):
            result = await remote.call(ADD, Add(n=5))
            assert_type(result, AddResult)  # mypy: typed without a cast
            assert isinstance(result, AddResult)
            assert result.value == 5
            echoed = await remote.call(ECHO, Echo(text="hi"), timeout=DEADLINE)
            assert_type(echoed, Echo)
            assert echoed.text == "hi"
            # Untyped form (README): decoded by the type name the reply carries.
            untyped = await remote.call(Add(n=1))
            assert isinstance(untyped, AddResult)
            assert untyped.value == 6


async def test_do_send_is_a_coroutine_returning_once_written() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        assert inspect.iscoroutinefunction(remote.do_send)
        with anyio.fail_after(DEADLINE):
            await remote.do_send(Echo(text="one-way"))
            await served.counter.wait_echoed("one-way")
            # One-way: no remote errors come back, and the connection stays usable.
            await remote.do_send(Ping(msg="nobody handles this"))
            await remote.do_send(Echo(text="two"))
            await served.counter.wait_echoed("two")
            assert (await remote.call(ADD, Add(n=2))).value == 2


# --- routing ----------------------------------------------------------------------------------


async def test_routing_by_type_and_by_exposed_name_with_fallback() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        first = system.spawn(Counter(tag="first:"))
        second = system.spawn(Counter(tag="second:"))
        node = LocalNode("server")
        node.expose("first", first)
        node.expose("second", second)
        router = MessageRouter().route(Echo, node.handler(first, Echo)).build()
        server = await RemoteServer.bind("127.0.0.1:0", router)
        async with server, await connect(server) as client:
            with anyio.fail_after(DEADLINE):

                async def echo(node_name: str, actor: str) -> str:
                    remote = client.remote_addr(Counter, node_name, actor)
                    return (await remote.call(ECHO, Echo(text="x"))).text

                # Two actors serve the same type; the name picks one.
                assert await echo("server", "second") == "second:x"
                assert await echo("server", "first") == "first:x"
                # A name the server does not know is an error, not a message to whichever
                # actor takes its type (routing by type is opt-in).
                with pytest.raises(UnknownActor):
                    await echo("server", "no-such-name")
                # README: target_node must match the node's name (or be empty).
                assert await echo("", "second") == "second:x"
                with pytest.raises(UnknownActor):
                    await echo("another-node", "second")
        # The opt-in: an unknown name falls back to the type's route, as in the seed.
        fallback = LocalNode("server", route_by_type=True)
        fallback.expose("second", second)
        router = MessageRouter().route(Echo, fallback.handler(first, Echo)).build()
        server = await RemoteServer.bind("127.0.0.1:0", router)
        async with server, await connect(server) as client:
            with anyio.fail_after(DEADLINE):
                assert (await echo("server", "no-such-name")) == "first:x"
                assert (await echo("server", "second")) == "second:x"


async def test_handler_alone_serves_one_type_for_any_actor_name_when_opted_in() -> None:
    """``node.handler(addr, Type)`` given to the server directly, as in the seed (whose
    clients name an actor the server never declared: ``LocalNode(route_by_type=True)``)."""
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        node = LocalNode("calc", route_by_type=True)
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(addr, Add))
        async with server, await connect(server) as client:
            remote = client.remote_addr(Counter, "calc", "calculator")
            with anyio.fail_after(DEADLINE):
                assert (await remote.call(ADD, Add(n=4))).value == 4
                with pytest.raises(UnknownActor):  # known type, no route, unknown name
                    await remote.call(ECHO, Echo(text="x"))


async def test_handler_alone_refuses_a_name_it_does_not_serve() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        node = LocalNode("calc")
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(addr, Add))
        async with server, await connect(server) as client:
            with anyio.fail_after(DEADLINE):
                with pytest.raises(UnknownActor, match="calculator"):
                    await client.remote_addr(Counter, "calc", "calculator").call(ADD, Add(n=4))
                # A request that names no actor routes by type.
                assert (
                    await client.remote_addr(Counter, "calc", "").call(ADD, Add(n=4))
                ).value == 4


# --- errors -----------------------------------------------------------------------------------


async def test_unknown_actor() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        with anyio.fail_after(DEADLINE):
            with pytest.raises(UnknownActor):
                await client.remote_addr(Counter, "elsewhere", "counter").send(Add(n=1))
            # A type the server knows but routes nowhere, to a name it does not expose.
            with pytest.raises(UnknownActor):
                await client.remote_addr(Counter, "server", "nobody").send(Ping(msg="?"))
            # The connection survives error replies.
            assert (
                await client.remote_addr(Counter, "server", "counter").call(ADD, Add(n=1))
            ).value == 1


async def test_unknown_message_type() -> None:
    mystery = mystery_message_class()
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        node = LocalNode("server")
        node.expose("counter", addr)
        server = await RemoteServer.bind("127.0.0.1:0", counter_router(node, addr).build())
        async with server, await connect(server) as client:
            remote = client.remote_addr(Counter, "server", "counter")
            with anyio.fail_after(DEADLINE):
                with pytest.raises(UnknownMessageType):  # no class for it on the server
                    await remote.send(mystery(n=1))
                with pytest.raises(UnknownMessageType):  # the named actor has no handler
                    await remote.send(Ping(msg="?"))
                assert (await remote.call(ADD, Add(n=1))).value == 1


async def test_remote_handler_error_carries_type_name_and_message() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        with anyio.fail_after(DEADLINE), pytest.raises(RemoteHandlerError) as caught:
            await remote.call(Fail(reason="boom 42"))
        assert caught.value.type_name == "ValueError"
        assert "boom 42" in str(caught.value)
        assert caught.value.remote_message == "boom 42"


async def test_remote_actor_stopped() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        with anyio.fail_after(DEADLINE):
            await remote.send(Stop())
            with pytest.raises(cinema.ActorStopped):
                await remote.call(ADD, Add(n=1))


async def test_remote_actor_stopped_from_outside() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        served.addr.stop()
        remote = client.remote_addr(Counter, "server", "counter")
        with anyio.fail_after(DEADLINE), pytest.raises(ActorStopped):
            await remote.send(Add(n=1))


async def test_per_call_timeout_raises_timeout_error() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        sleeper = Counter()
        addr = system.spawn(sleeper)
        node = LocalNode("server")
        node.expose("counter", addr)
        node.expose("other", system.spawn(Counter()))
        server = await RemoteServer.bind("127.0.0.1:0", counter_router(node, addr).build())
        async with server, await connect(server) as client:
            remote = client.remote_addr(Counter, "server", "counter")
            with anyio.fail_after(DEADLINE):
                with pytest.raises(TimeoutError):
                    await remote.call(SLEEP, Sleep(seconds=30), timeout=0.2)
                with pytest.raises(TimeoutError):
                    await remote.send(Sleep(seconds=30), timeout=0.1)
                # A timed-out call does not break the connection for others.
                other = client.remote_addr(Counter, "server", "other")
                assert (await other.call(ADD, Add(n=9), timeout=DEADLINE)).value == 9


# --- concurrency on one connection ------------------------------------------------------------


async def test_many_requests_in_flight_on_one_connection() -> None:
    count = 20
    barrier = Barrier(count)
    async with ActorSystem(shutdown_timeout=0.2) as system:
        node = LocalNode("server")
        first = None
        for i in range(count):
            addr = system.spawn(BarrierEcho(barrier))
            node.expose(f"w{i}", addr)
            first = first or addr
        assert first is not None
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(first, Echo))
        async with server, await connect(server) as client:
            replies: dict[int, str] = {}

            async def call(i: int) -> None:
                remote = client.remote_addr(BarrierEcho, "server", f"w{i}")
                replies[i] = (await remote.call(ECHO, Echo(text=f"r{i}"))).text

            # Every handler waits until all requests have arrived: this only finishes if all
            # of them are in flight at once on the one connection.
            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    for i in range(count):
                        tg.start_soon(call, i)
            assert replies == {i: f"r{i}" for i in range(count)}


async def test_replies_are_matched_out_of_order() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        slow = Counter()
        slow_addr = system.spawn(slow)
        node = LocalNode("server")
        node.expose("slow", slow_addr)
        node.expose("fast", system.spawn(Counter(tag="fast:")))
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(slow_addr, Sleep))
        async with server, await connect(server) as client:
            pending = Outcome()
            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    slow_remote = client.remote_addr(Counter, "server", "slow")
                    tg.start_soon(pending.run, lambda: slow_remote.call(SLEEP, Sleep(seconds=60)))
                    await slow.sleeping.wait()
                    fast = client.remote_addr(Counter, "server", "fast")
                    assert (await fast.call(ECHO, Echo(text="a"))).text == "fast:a"
                    assert not pending.done.is_set()
                    tg.cancel_scope.cancel()


# --- further edges of the same sentences ------------------------------------------------------


async def gated_server(system: ActorSystem) -> tuple[RemoteServer, Gated, Counter]:
    gated = Gated()
    node = LocalNode("server")
    gated_addr = system.spawn(gated)
    node.expose("gated", gated_addr)
    counter = Counter()
    node.expose("counter", system.spawn(counter))
    router = MessageRouter().route(Echo, node.handler(gated_addr, Echo)).build()
    return await RemoteServer.bind("127.0.0.1:0", router), gated, counter


@pytest.mark.parametrize("first", ["timed-out", "waiting"])
async def test_a_caller_that_times_out_does_not_strand_other_callers(first: str) -> None:
    """Many calls share one connection: one caller giving up (timeout) must not keep the
    replies of the others from being delivered, whichever call was made first."""
    async with ActorSystem(shutdown_timeout=0.2) as system:
        server, gated, counter = await gated_server(system)
        async with server, await connect(server) as client:
            waiting = Outcome()
            slow = client.remote_addr(Counter, "server", "counter")
            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:

                    async def start_waiting() -> None:
                        remote = client.remote_addr(Gated, "server", "gated")
                        tg.start_soon(waiting.run, lambda: remote.call(ECHO, Echo(text="w")))
                        await gated.entered.wait()

                    if first == "waiting":
                        await start_waiting()
                    timed_out = Outcome()
                    tg.start_soon(
                        timed_out.run, lambda: slow.call(SLEEP, Sleep(seconds=60), timeout=0.2)
                    )
                    await counter.sleeping.wait()
                    if first == "timed-out":
                        await start_waiting()
                    await timed_out.done.wait()
                    assert isinstance(timed_out.error, TimeoutError)
                    gated.gate.set()  # the reply comes only after the other caller gave up
                    await waiting.done.wait()
            assert waiting.error is None
            assert isinstance(waiting.value, Echo)
            assert waiting.value.text == "w"


async def test_a_cancelled_caller_does_not_strand_other_callers() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        server, gated, counter = await gated_server(system)
        async with server, await connect(server) as client:
            waiting = Outcome()
            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    cancelled = anyio.CancelScope()

                    async def cancelled_call() -> None:
                        with cancelled:
                            remote = client.remote_addr(Counter, "server", "counter")
                            await remote.call(SLEEP, Sleep(seconds=60))

                    tg.start_soon(cancelled_call)
                    await counter.sleeping.wait()
                    gated_remote = client.remote_addr(Gated, "server", "gated")
                    tg.start_soon(waiting.run, lambda: gated_remote.call(ECHO, Echo(text="w")))
                    await gated.entered.wait()
                    cancelled.cancel()
                    await anyio.wait_all_tasks_blocked()
                    gated.gate.set()
                    await waiting.done.wait()
            assert waiting.error is None
            assert isinstance(waiting.value, Echo)


async def test_queued_remote_requests_get_actor_stopped_when_the_actor_stops() -> None:
    """API.md core: stop() lets the running handler finish; queued messages' senders get
    ActorStopped. Over the wire that is cinema.ActorStopped."""
    async with ActorSystem(shutdown_timeout=0.2) as system:
        gated = Gated()
        gated_addr = system.spawn(gated)
        node = LocalNode("server")
        node.expose("gated", gated_addr)
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(gated_addr, Echo))
        async with server, await connect(server) as client:
            remote = client.remote_addr(Gated, "server", "gated")
            running, queued = Outcome(), Outcome()
            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(running.run, lambda: remote.call(ECHO, Echo(text="first")))
                    await gated.entered.wait()
                    tg.start_soon(queued.run, lambda: remote.call(ECHO, Echo(text="second")))
                    await anyio.wait_all_tasks_blocked()
                    gated_addr.stop()
                    gated.gate.set()
            assert isinstance(running.value, Echo)
            assert running.value.text == "first"
            assert isinstance(queued.error, ActorStopped)
            assert gated.handled == ["first"]


async def test_untyped_call_of_a_handler_returning_nothing_is_none() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        gated_addr = system.spawn(Gated())
        server = await RemoteServer.bind(
            "127.0.0.1:0", LocalNode("s", route_by_type=True).handler(gated_addr, Add)
        )
        async with server, await connect(server) as client:
            remote = client.remote_addr(Gated, "s", "gated")
            with anyio.fail_after(DEADLINE):
                assert await remote.call(Add(n=0)) is None
                envelope = await remote.send(Add(n=0))
                assert (envelope.message_type, envelope.payload) == ("", b"")


async def test_typed_call_with_a_reply_of_another_type_is_a_clear_error() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        gated_addr = system.spawn(Gated())
        server = await RemoteServer.bind(
            "127.0.0.1:0", LocalNode("s", route_by_type=True).handler(gated_addr, Add)
        )
        async with server, await connect(server) as client:
            remote = client.remote_addr(Gated, "s", "gated")
            with anyio.fail_after(DEADLINE), pytest.raises(cinema.CinemaError):
                await remote.call(ADD, Add(n=1))  # the handler answers with an Echo


async def test_large_and_unicode_payloads_round_trip() -> None:
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        text = "héllo, wörld ✓ " * 1000
        with anyio.fail_after(DEADLINE):
            reply = await remote.call(ECHO, Echo(text=text))
        assert reply.text == text


async def test_bind_on_an_address_in_use_raises_os_error() -> None:
    async with serve_counter() as served:
        with pytest.raises(OSError, match=r"(?i)in use"):
            await RemoteServer.bind(served.server.address, served.node.handler(served.addr, Add))


async def test_remote_handler_error_from_an_async_handler_and_the_actor_keeps_serving() -> None:
    """A failing handler is the actor's failure; with a restart strategy it keeps serving."""
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn_with_strategy(Counter, cinema.SupervisorStrategy.restart(5, 10.0))
        server = await RemoteServer.bind(
            "127.0.0.1:0", counter_router(LocalNode("server", route_by_type=True), addr).build()
        )
        async with server, await connect(server) as client:
            remote = client.remote_addr(Counter, "server", "counter")
            with anyio.fail_after(DEADLINE):
                with pytest.raises(RemoteHandlerError) as caught:
                    await remote.send(Fail(reason="first"))
                assert caught.value.type_name == "ValueError"
                assert (await remote.call(ADD, Add(n=2))).value == 2  # a fresh instance


async def test_an_exception_from_the_server_block_propagates_unwrapped() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        server = await RemoteServer.bind(
            "127.0.0.1:0", LocalNode("s", route_by_type=True).handler(addr, Add)
        )
        with pytest.raises(KeyError):
            async with server:
                raise KeyError("application error")


async def test_an_exception_from_the_client_block_propagates_unwrapped() -> None:
    async with serve_counter() as served:
        conn = await TcpTransport().connect(served.server.address)
        with pytest.raises(KeyError):
            async with RemoteClient(conn):
                raise KeyError("application error")


async def test_a_connection_cut_without_goodbye_fails_pending_and_later_calls() -> None:
    """The peer goes away abruptly (TCP closed, no Close frame)."""
    async with serve_counter() as served, TcpProxy(served_port(served)).running() as relay:
        client = RemoteClient(await TcpTransport().connect(relay.address))
        remote = client.remote_addr(Counter, "server", "counter")
        pending = Outcome()
        with anyio.fail_after(DEADLINE):
            assert (await remote.call(ADD, Add(n=1))).value == 1
            async with anyio.create_task_group() as tg:
                tg.start_soon(pending.run, lambda: remote.call(SLEEP, Sleep(seconds=60)))
                await served.counter.sleeping.wait()
                relay.cut()
                await pending.done.wait()
            assert isinstance(pending.error, ConnectionLost)
            with pytest.raises(ConnectionLost):
                await remote.call(ADD, Add(n=1))
            with pytest.raises(ConnectionLost):
                await remote.do_send(Add(n=1))
        await client.aclose()


async def test_exposed_actor_stopped_and_unexposed_names() -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        named = system.spawn(Counter(tag="named:"))
        by_type = system.spawn(Counter(tag="type:"))
        node = LocalNode("server")
        node.expose("named", named)
        server = await RemoteServer.bind("127.0.0.1:0", node.handler(by_type, Echo))
        async with server, await connect(server) as client:
            remote = client.remote_addr(Counter, "server", "named")
            with anyio.fail_after(DEADLINE):
                assert (await remote.call(ECHO, Echo(text="x"))).text == "named:x"
                named.stop()
                with pytest.raises(ActorStopped):
                    await remote.call(ECHO, Echo(text="x"))
                assert node.unexpose("named") is True
                assert node.unexpose("named") is False
                # No longer exposed: an unknown name (routing by type is opt-in).
                with pytest.raises(UnknownActor):
                    await remote.call(ECHO, Echo(text="x"))


async def test_a_late_reply_after_a_timeout_is_not_taken_for_the_next_one() -> None:
    """A timed-out request may still be handled (API.md core): its late reply must not be
    delivered to a later request on the same connection."""
    async with serve_counter() as served, await connect(served.server) as client:
        remote = client.remote_addr(Counter, "server", "counter")
        with anyio.fail_after(DEADLINE):
            with pytest.raises(TimeoutError):
                await remote.call(SLEEP, Sleep(seconds=0.3), timeout=0.05)
            # Queued behind the sleep: its reply comes right after the late one.
            assert (await remote.call(ADD, Add(n=4))).value == 4
            assert (await remote.call(ECHO, Echo(text="next"))).text == "next"


async def cancel_run_while_a_client_connects(races: list[dict[str, object]]) -> None:
    async with ActorSystem(shutdown_timeout=0.2) as system:
        addr = system.spawn(Counter())
        for _ in range(3):
            server = await RemoteServer.bind(
                "127.0.0.1:0", LocalNode("s", route_by_type=True).handler(addr, Add)
            )
            port = server.address.rsplit(":", 1)[1]
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.run)
                await anyio.wait_all_tasks_blocked()
                # A blocking connect completes in the listen backlog, before any accept.
                with socket.create_connection(("127.0.0.1", int(port))):
                    await anyio.lowlevel.checkpoint()  # one loop pass: the listener is readable
                    tg.cancel_scope.cancel()  # ...and run() is cancelled in that same pass
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
    assert races == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cancelling_run_while_a_client_connects_asyncio(
    accept_races: list[dict[str, object]],
) -> None:
    await cancel_run_while_a_client_connects(accept_races)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_cancelling_run_while_a_client_connects_trio(
    accept_races: list[dict[str, object]],
) -> None:
    await cancel_run_while_a_client_connects(accept_races)
