"""End-to-end: a RemoteClient talking to a RemoteServer over loopback TCP."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from cinema import ActorStopped, CinemaError
from cinema.remote import (
    ConnectionLost,
    Envelope,
    ProtocolError,
    RemoteClient,
    RemoteHandlerError,
    RemoteServer,
    TcpTransport,
    UnknownActor,
    UnknownMessageType,
    rpc,
)
from tests.remote.protos.remote_test_pb2 import Add, AddResult, Echo, Fail, Sleep, Stop, Unrouted
from tests.remote.support import ADD, ECHO, Calculator, calc_server, connect

pytestmark = pytest.mark.anyio


async def test_send_returns_the_raw_reply_envelope() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        envelope = await remote.send(Add(n=5))
        assert isinstance(envelope, Envelope)
        assert envelope.message_type == "remote_test.AddResult"
        assert AddResult.FromString(envelope.payload).value == 5


async def test_call_decodes_the_typed_reply() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        first = await remote.call(ADD, Add(n=2))
        second = await remote.call(ADD, Add(n=3))
        assert (first.value, second.value) == (2, 5)
        assert client.server_node == "calc-server"


async def test_call_checks_the_request_type() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(TypeError, match="takes Add"):
            await remote.call(ADD, Echo(text="x"))  # type: ignore[misc]  # the mistake under test


async def test_call_rejects_a_reply_of_another_type() -> None:
    wrong = rpc(Add, Echo)
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(ProtocolError, match=r"expected a remote_test\.Echo reply"):
            await remote.call(wrong, Add(n=1))


async def test_do_send_returns_once_written_and_is_handled() -> None:
    async with calc_server() as (server, calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        await remote.do_send(Add(n=7))
        # The connection is ordered and the actor handles messages in order.
        reply = await remote.call(ADD, Add(n=0))
        assert reply.value == 7
        assert calc.value == 7


async def test_many_requests_in_flight_on_one_connection() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        results: dict[int, str] = {}

        async def one(i: int) -> None:
            results[i] = (await remote.call(ECHO, Echo(text=str(i)))).text

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
        assert results == {i: str(i) for i in range(200)}


async def test_replies_come_back_out_of_order() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        busy = client.remote_addr(Calculator, "calc-server", "calculator")
        other = client.remote_addr(Calculator, "calc-server", "second")
        slow_sent = anyio.Event()
        slow_done = False

        async def slow() -> None:
            nonlocal slow_done
            slow_sent.set()
            await busy.send(Sleep(seconds=30))
            slow_done = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await slow_sent.wait()
            # The first actor is busy for 30 s; a request to another actor on the same
            # connection is answered meanwhile.
            with anyio.fail_after(10):
                assert (await other.call(ECHO, Echo(text="fast"))).text == "fast"
            assert not slow_done
            tg.cancel_scope.cancel()


async def test_handler_error_carries_the_remote_type_and_message() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(RemoteHandlerError) as info:
            await remote.send(Fail(reason="boom"))
        assert info.value.type_name == "ValueError"
        assert info.value.remote_message == "boom"
        assert isinstance(info.value, CinemaError)
        # The connection is still good afterwards.
        assert (await remote.call(ADD, Add(n=1))).value == 1


async def test_unknown_message_type() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "")
        with pytest.raises(UnknownMessageType):
            await remote.send(Unrouted())


async def test_an_unknown_actor_name_is_unknown_actor_not_the_type_route() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "nobody")
        with pytest.raises(UnknownActor, match="'nobody'"):
            await remote.call(ADD, Add(n=4))
        # The connection goes on serving the names that exist.
        good = client.remote_addr(Calculator, "calc-server", "calculator")
        assert (await good.call(ADD, Add(n=4))).value == 4


async def test_unknown_node() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "other-node", "calculator")
        with pytest.raises(UnknownActor, match="other-node"):
            await remote.send(Add(n=1))


async def test_remote_actor_stopped() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        await remote.send(Stop())
        with pytest.raises(ActorStopped):
            await remote.send(Add(n=1))


async def test_per_call_timeout() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(TimeoutError):
            await remote.send(Sleep(seconds=10), timeout=0.05)


async def test_stopping_the_server_fails_pending_calls_with_connection_lost() -> None:
    async with calc_server() as (server, _calc, _addr):
        client = RemoteClient(await TcpTransport().connect(server.address))
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        assert (await remote.call(ADD, Add(n=1))).value == 1
        failures: list[BaseException] = []
        started = anyio.Event()

        async def pending() -> None:
            started.set()
            try:
                await remote.send(Sleep(seconds=30))
            except ConnectionLost as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pending)
            await started.wait()
            await anyio.sleep(0.05)  # let the request reach the server
            await server.aclose()
        assert len(failures) == 1
        with pytest.raises(ConnectionLost):
            await remote.send(Add(n=1))
        await client.aclose()


async def test_connection_lost_fails_later_calls_at_once() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        await remote.call(ADD, Add(n=1))
        await client.aclose()
        with pytest.raises(ConnectionLost):
            await remote.call(ADD, Add(n=1))
        with pytest.raises(ConnectionLost):
            await remote.do_send(Add(n=1))


async def test_server_address_and_repr() -> None:
    async with calc_server() as (server, _calc, _addr):
        host, _, port = server.address.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) > 0
        assert "calc-server" in repr(server)


async def test_bind_with_tcp_scheme_and_run_cancelled() -> None:
    async with calc_server() as (inner, _calc, _addr):
        router = inner._handler
        server = await RemoteServer.bind("tcp://127.0.0.1:0", router)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            async with connect(server) as client:
                remote = client.remote_addr(Calculator, "calc-server", "calculator")
                assert (await remote.call(ADD, Add(n=2))).value == 2
            tg.cancel_scope.cancel()


async def test_untyped_call_decodes_by_the_reply_type_name() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        reply = await remote.call(Add(n=6))
        assert isinstance(reply, AddResult)
        assert reply.value == 6
        assert await remote.call(Stop()) is None  # the handler returned nothing
        with pytest.raises(TypeError, match="one message"):
            await remote.call(Add(n=1), Add(n=2))  # type: ignore[call-overload]  # misuse under test


async def test_a_timed_out_reader_hands_reading_over_to_waiting_callers() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        busy = client.remote_addr(Calculator, "calc-server", "calculator")
        other = client.remote_addr(Calculator, "calc-server", "second")
        await other.call(ECHO, Echo(text="warm-up"))  # handshake done
        results: list[str] = []

        async def echo(i: int) -> None:
            results.append((await other.call(ECHO, Echo(text=str(i)))).text)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:

                async def slow() -> None:
                    # Becomes the reader first, then gives up while others wait on it.
                    with pytest.raises(TimeoutError):
                        await busy.send(Sleep(seconds=30), timeout=0.05)

                tg.start_soon(slow)
                for i in range(30):
                    tg.start_soon(echo, i)
        assert sorted(results, key=int) == [str(i) for i in range(30)]


async def test_a_cancelled_caller_does_not_break_the_connection() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "second")
        for _ in range(20):
            with anyio.move_on_after(0):
                await remote.call(ECHO, Echo(text="maybe"))
        assert (await remote.call(ECHO, Echo(text="still fine"))).text == "still fine"


async def test_cancelling_the_first_call_does_not_break_the_handshake() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server) as client:
        remote = client.remote_addr(Calculator, "calc-server", "second")
        started = anyio.Event()

        async def first() -> None:
            started.set()
            await remote.call(ECHO, Echo(text="first"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await started.wait()
            tg.cancel_scope.cancel()
        assert (await remote.call(ECHO, Echo(text="second"))).text == "second"


async def test_max_in_flight_applies_backpressure() -> None:
    async with (
        calc_server(max_in_flight=2) as (server, _calc, _addr),
        connect(server) as client,
    ):
        busy = client.remote_addr(Calculator, "calc-server", "calculator")
        other = client.remote_addr(Calculator, "calc-server", "second")
        await other.call(ECHO, Echo(text="warm-up"))
        async with anyio.create_task_group() as tg:
            for _ in range(2):  # one runs, one waits for the actor: 2 in progress
                tg.start_soon(partial(busy.send, Sleep(seconds=0.5)))
            await anyio.sleep(0.1)  # let both reach the server
            # The server reads no further from this connection until one completes ...
            with anyio.move_on_after(0.3) as blocked:
                await other.call(ECHO, Echo(text="third"))
            assert blocked.cancelled_caught
            # ... and then it does.
            with anyio.fail_after(10):
                assert (await other.call(ECHO, Echo(text="fourth"))).text == "fourth"
