"""A remote call is one trace across the wire; remote servers and clients count their work."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from cinema.remote import RemoteClient, RemoteHandlerError, TcpTransport, UnknownActor
from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend
from tests.remote.protos.remote_test_pb2 import Add, Echo, Fail
from tests.remote.support import ADD, ECHO, Calculator, calc_server

from .conftest import Spans

pytestmark = pytest.mark.anyio


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    return network_backend(request)


async def test_a_remote_call_is_one_trace_client_to_server(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")
    async with (
        calc_server() as (server, _calc, _addr),
        RemoteClient(await TcpTransport().connect(server.address)) as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with tracer.start_as_current_span("caller") as outer:
            result = await remote.call(ADD, Add(n=4))
    assert result.value == 4
    trace_id = outer.get_span_context().trace_id
    wire = [s for s in spans.named("calculator/remote_test.Add")]
    client_span = next(s for s in wire if s.kind == SpanKind.CLIENT)
    server_span = next(s for s in wire if s.kind == SpanKind.SERVER)
    assert client_span.parent is not None
    assert client_span.parent.span_id == outer.get_span_context().span_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id
    assert server_span.parent.is_remote
    # The actor's own handling, under the server's span, in the same trace.
    local = next(s for s in spans.named("Calculator/Add") if s.kind == SpanKind.SERVER)
    assert local.context.trace_id == trace_id
    assert {client_span.context.trace_id, server_span.context.trace_id} == {trace_id}
    assert client_span.attributes is not None
    assert client_span.attributes["rpc.system"] == "cinema"
    assert client_span.attributes["rpc.method"] == "remote_test.Add"
    assert client_span.attributes["cinema.outcome"] == "ok"


async def test_a_remote_failure_marks_both_spans(spans: Spans) -> None:
    async with (
        calc_server() as (server, _calc, _addr),
        RemoteClient(await TcpTransport().connect(server.address)) as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(RemoteHandlerError):
            await remote.call(Fail(reason="boom"))
    wire = spans.named("calculator/remote_test.Fail")
    assert {s.kind for s in wire} == {SpanKind.CLIENT, SpanKind.SERVER}
    for span in wire:
        assert span.status.status_code == StatusCode.ERROR
    client_span = next(s for s in wire if s.kind == SpanKind.CLIENT)
    assert client_span.attributes is not None
    assert client_span.attributes["cinema.outcome"] == "handler_error"
    local = next(s for s in spans.named("Calculator/Fail") if s.kind == SpanKind.SERVER)
    event = next(e for e in local.events if e.name == "cinema.supervision")
    assert event.attributes is not None
    assert event.attributes["cinema.supervision.decision"] == "restart"


async def test_a_call_without_headers_gets_a_root_server_span(spans: Spans) -> None:
    # A client that does not trace sends no headers, like a peer from before the field
    # existed: the server's span is then the root of a trace of its own.
    from cinema import telemetry

    async with calc_server() as (server, _calc, _addr):
        telemetry.set_tracer_provider(None)
        untraced = RemoteClient(await TcpTransport().connect(server.address))
        telemetry.set_tracer_provider(spans.provider)
        async with untraced:
            remote = untraced.remote_addr(Calculator, "calc-server", "calculator")
            assert (await remote.call(ECHO, Echo(text="hi"))).text == "hi"
    (server_span,) = spans.named("calculator/remote_test.Echo")
    assert server_span.kind == SpanKind.SERVER
    assert server_span.parent is None


async def test_server_and_client_stats() -> None:
    async with (
        calc_server() as (server, _calc, _addr),
        RemoteClient(await TcpTransport().connect(server.address)) as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        for i in range(3):
            await remote.call(ADD, Add(n=i))
        with pytest.raises(RemoteHandlerError):
            await remote.call(Fail(reason="x"))
        with pytest.raises(UnknownActor):
            await client.remote_addr(Calculator, "elsewhere", "nobody").call(Add(n=1))
        # Every request was counted before its reply went out.
        served = server.stats()
        sent = client.stats()
    assert served.connections == 1
    assert served.connections_total == 1
    assert served.requests == 5
    assert served.in_flight == 0
    assert served.errors == {"handler_error": 1, "unknown_actor": 1}
    assert served.bytes_in > 0
    assert served.bytes_out > 0
    assert sent.connected
    assert sent.requests == 5
    assert sent.in_flight == 0
    assert sent.errors == {"handler_error": 1, "unknown_actor": 1}
    assert sent.bytes_out == served.bytes_in
    assert sent.bytes_in > served.bytes_out  # and the server's welcome
