"""OpenTelemetry for Cinema: spans per message, metrics from the statistics counters.

Cinema depends on ``opentelemetry-api`` only, as the optional extra ``cinema-core[otel]``;
applications bring the SDK and their exporters. Tracing is on for an :class:`cinema.ActorSystem`
when, at the moment it is entered, a real tracer provider is configured (the SDK's, set with
``opentelemetry.trace.set_tracer_provider``) or one was given to :func:`set_tracer_provider`
here. Otherwise (API absent, or the API's default no-op provider) the system records nothing
and its hot paths run exactly the code they run without OpenTelemetry: the switch is made once
per system, not per message.

Spans (following the OpenTelemetry messaging and RPC semantic conventions):

- ``addr.do_send(msg)``: a ``PRODUCER`` span ``send <Actor>``, child of the caller's current
  span; handling the message: a ``CONSUMER`` span ``process <Actor>``, child of that one.
- ``await addr.send(msg)``: a ``CLIENT`` span ``<Actor>/<Message>``; handling it: a ``SERVER``
  span of the same name, its child. Attributes: ``messaging.system`` / ``rpc.system``
  ``"cinema"``, ``messaging.destination.name`` / ``rpc.service`` (the actor's class),
  ``cinema.message.type`` / ``rpc.method``, ``cinema.actor`` (``"Counter#12"``, on handling
  spans) and ``cinema.outcome`` (``ok``, ``failed``, ``reply_error``, ``stopped``, ``timeout``).
- A handler that raises records the exception on its span (status ``ERROR``) and a
  ``cinema.supervision`` event with the decision (``restart``, ``stop``, ``escalate``,
  ``give up``); the restart itself is a ``restart <Actor>`` span, child of the failed one.
- cinema-remote carries the W3C trace context in the envelope's ``headers``: the server's
  ``SERVER`` span is a child of the client's ``CLIENT`` span, one trace across processes.

Metrics: :func:`enable_metrics` registers observable instruments (read when the SDK collects,
never on a hot path) over every running system, and over what cinema-remote and
cinema-cluster add with :func:`add_metric_source`.

This module is public for extenders (cinema-remote, cinema-cluster); applications only call
:func:`set_tracer_provider` and :func:`enable_metrics`, if anything.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ._envelopes import Traced
from ._errors import ActorStopped, ReplyError
from ._handler import AsyncHandler, unhandled
from ._message import NO_HANDLER
from ._states import STOPPING

if TYPE_CHECKING:
    from ._cell import Cell
    from ._system import ActorSystem

__all__ = [
    "MetricSource",
    "Observation",
    "Tracing",
    "add_metric_source",
    "enable_metrics",
    "running_systems",
    "set_tracer_provider",
    "tracing",
    "tracing_of",
]

_override: Any = None  # a provider given to set_tracer_provider()


def set_tracer_provider(provider: Any) -> None:
    """Use ``provider`` for Cinema's spans instead of OpenTelemetry's global one.

    Applies to systems entered (and remote calls made) from now on; ``None`` goes back to the
    global provider.
    """
    global _override
    _override = provider


def tracing() -> Tracing | None:
    """The :class:`Tracing` to use now, or ``None`` when nothing would be recorded.

    ``None`` when ``opentelemetry-api`` is not installed or no real tracer provider is set.
    """
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - the test environment has the API
        return None
    provider = _override if _override is not None else trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    cached = _cache.get(id(provider))
    if cached is not None and cached.provider is provider:
        return cached
    made = Tracing(provider)
    _cache.clear()
    _cache[id(provider)] = made
    return made


_cache: dict[int, Tracing] = {}


def tracing_of(addr: Any) -> Tracing | None:
    """The :class:`Tracing` of the system that ``addr``'s actor lives in, if it traces."""
    instrument: Tracing | None = addr._ctx._dispatcher.instrument
    return instrument


# Outcome attribute values.
OK = "ok"
FAILED = "failed"
REPLY_ERROR = "reply_error"
STOPPED = "stopped"
TIMEOUT = "timeout"


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, ReplyError):
        return REPLY_ERROR
    if isinstance(exc, ActorStopped):
        return STOPPED
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    return FAILED


class Tracing:
    """Makes Cinema's spans with one tracer (one per provider)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context, propagate, trace

        from . import __version__

        self.provider = provider
        self.tracer = provider.get_tracer("cinema", __version__)
        self._trace = trace
        self._context = context
        self._propagate = propagate
        self._kind = trace.SpanKind
        self._error = trace.Status(trace.StatusCode.ERROR)
        # Spans of failed handlers, ended once supervision has decided (see decided()), and
        # the contexts of restarts to come; forget() drops an actor's entry when it stops.
        self._failed: dict[Any, Any] = {}

    # -- local messages -------------------------------------------------------------------

    def do_send(self, ctx: Cell, msg: object) -> Traced:
        """The ``PRODUCER`` span of a do_send (ended at once) and the item to queue."""
        name = type(ctx._actor).__qualname__
        span = self.tracer.start_span(
            f"send {name}",
            kind=self._kind.PRODUCER,
            attributes={
                "messaging.system": "cinema",
                "messaging.operation.type": "send",
                "messaging.destination.name": name,
                "cinema.message.type": type(msg).__qualname__,
            },
        )
        parent = self._trace.set_span_in_context(span)
        span.end()
        return Traced(msg, None, parent)

    async def send(self, addr: Any, msg: object, timeout: float | None) -> object:
        """``addr.send(msg)`` as a ``CLIENT`` span around the queued request."""
        ctx = addr._ctx
        actor = type(ctx._actor).__qualname__
        message = type(msg).__qualname__
        if ctx._info.lookup(type(msg)) is None:
            raise unhandled(type(ctx._actor), type(msg))
        if ctx._state >= STOPPING:
            raise ActorStopped(f"{addr!r} is stopped")
        span = self.tracer.start_span(
            f"{actor}/{message}",
            kind=self._kind.CLIENT,
            attributes={"rpc.system": "cinema", "rpc.service": actor, "rpc.method": message},
        )
        parent = self._trace.set_span_in_context(span)
        token = self._context.attach(parent)
        try:
            result = await addr._send_queued(
                ctx, msg, timeout, lambda m, fut: Traced(m, fut, parent)
            )
            span.set_attribute("cinema.outcome", OK)
        except BaseException as exc:
            outcome = _outcome_of(exc)
            span.set_attribute("cinema.outcome", outcome)
            if outcome != REPLY_ERROR:
                span.set_status(self._error)
                span.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            self._context.detach(token)
            span.end()
        return result

    def handle(self, dispatcher: Any, ctx: Cell, item: Traced) -> bool:
        """Handle a traced item in the dispatcher: the consumer or server span around it."""
        msg = item.msg
        reply = item.fut
        if ctx._capacity is not None:
            dispatcher._room(ctx)
        entry = ctx._info.lookup(type(msg))
        if entry is None:
            if reply is not None:
                if not reply.done():
                    reply.set_exception(unhandled(type(ctx._actor), type(msg)))
            else:
                dispatcher.registry.dead_letter(msg, ctx, NO_HANDLER)
            return True
        actor = type(ctx._actor).__qualname__
        message = type(msg).__qualname__
        if reply is None:
            name = f"process {actor}"
            kind = self._kind.CONSUMER
            attributes = {
                "messaging.system": "cinema",
                "messaging.operation.type": "process",
                "messaging.destination.name": actor,
                "cinema.message.type": message,
            }
        else:
            name = f"{actor}/{message}"
            kind = self._kind.SERVER
            attributes = {"rpc.system": "cinema", "rpc.service": actor, "rpc.method": message}
        # (Few attributes: the SDK's per-attribute checks are most of a span's cost.)
        attributes["cinema.actor"] = f"{actor}#{ctx._id}"
        span = self.tracer.start_span(name, context=item.parent, kind=kind, attributes=attributes)
        args = (ctx._actor, msg, ctx)
        if type(entry) is AsyncHandler:
            func = self._async_step(entry.func, span, ctx)
            return bool(dispatcher._call(ctx, 0, func, True, args, reply))
        return bool(dispatcher._call(ctx, 0, self._sync_step(entry, span, ctx), False, args, reply))

    def _sync_step(self, func: Any, span: Any, ctx: Cell) -> Callable[..., Any]:
        def step(*args: Any) -> Any:
            token = self._context.attach(self._trace.set_span_in_context(span))
            try:
                result = func(*args)
            except BaseException as exc:
                self._ended_with(span, ctx, exc)
                raise
            finally:
                self._context.detach(token)
            span.set_attribute("cinema.outcome", OK)
            span.end()
            return result

        return step

    def _async_step(self, func: Any, span: Any, ctx: Cell) -> Callable[..., Any]:
        async def step(*args: Any) -> Any:
            token = self._context.attach(self._trace.set_span_in_context(span))
            try:
                result = await func(*args)
            except BaseException as exc:
                self._ended_with(span, ctx, exc)
                raise
            finally:
                self._context.detach(token)
            span.set_attribute("cinema.outcome", OK)
            span.end()
            return result

        return step

    def _ended_with(self, span: Any, ctx: Cell, exc: BaseException) -> None:
        outcome = _outcome_of(exc) if isinstance(exc, ReplyError) else FAILED
        span.set_attribute("cinema.outcome", outcome)
        if outcome == REPLY_ERROR:
            span.end()
            return
        if isinstance(exc, Exception):
            span.record_exception(exc)
        span.set_status(self._error)
        span.set_attribute("error.type", type(exc).__qualname__)
        # Supervision decides next (decided()), which ends the span.
        self._failed[ctx] = span

    # -- supervision ----------------------------------------------------------------------

    def decided(self, ctx: Cell, decision: str, delay: float) -> None:
        """Supervision decided about ``ctx``'s failure: an event on the failed span."""
        span = self._failed.pop(ctx, None)
        attributes: dict[str, Any] = {
            "cinema.actor": f"{type(ctx._actor).__qualname__}#{ctx._id}",
            "cinema.supervision.decision": decision,
        }
        if delay:
            attributes["cinema.supervision.delay_s"] = delay
        if span is None:
            # A failure outside a traced handler (a hook, a stream): an event on the current
            # span, if any.
            current = self._trace.get_current_span()
            if current.is_recording():
                current.add_event("cinema.supervision", attributes)
            return
        span.add_event("cinema.supervision", attributes)
        if decision == "restart":
            self._failed[ctx] = _Restarting(self._trace.set_span_in_context(span))
        span.end()

    def restarted(self, ctx: Cell) -> None:
        """A fresh instance replaced a failed one: a ``restart`` span under the failure."""
        pending = self._failed.pop(ctx, None)
        if not isinstance(pending, _Restarting):
            return
        name = type(ctx._actor).__qualname__
        span = self.tracer.start_span(
            f"restart {name}",
            context=pending.parent,
            attributes={"cinema.actor.type": name, "cinema.actor": f"{name}#{ctx._id}"},
        )
        span.end()

    def forget(self, ctx: Cell) -> None:
        """``ctx`` stopped for good: end a span still waiting for a decision."""
        span = self._failed.pop(ctx, None)
        if span is not None and not isinstance(span, _Restarting):
            span.end()

    # -- across processes (cinema-remote) -------------------------------------------------

    def start_client(self, service: str, method: str, attributes: Mapping[str, Any]) -> Any:
        """Start a ``CLIENT`` span for a remote call, child of the current span."""
        attrs = {"rpc.system": "cinema", "rpc.service": service, "rpc.method": method}
        attrs.update(attributes)
        return self.tracer.start_span(
            f"{service}/{method}", kind=self._kind.CLIENT, attributes=attrs
        )

    def inject(self, span: Any, headers: MutableMapping[str, str]) -> None:
        """Write ``span``'s W3C trace context (``traceparent``, ``tracestate``) into headers."""
        self._propagate.inject(headers, context=self._trace.set_span_in_context(span))

    def start_server(
        self, headers: Mapping[str, str], service: str, method: str, attributes: Mapping[str, Any]
    ) -> Any:
        """Start a ``SERVER`` span, child of the remote caller's span found in ``headers``."""
        parent = self._propagate.extract(headers) if headers else None
        attrs = {"rpc.system": "cinema", "rpc.service": service, "rpc.method": method}
        attrs.update(attributes)
        return self.tracer.start_span(
            f"{service}/{method}", context=parent, kind=self._kind.SERVER, attributes=attrs
        )

    def use(self, span: Any) -> Any:
        """A context manager making ``span`` current (not ending it)."""
        return self._trace.use_span(span, end_on_exit=False, record_exception=False)

    def failed(self, span: Any, exc: BaseException, error_kind: str | None = None) -> None:
        """Mark ``span`` as failed with ``exc``."""
        span.set_status(self._error)
        span.set_attribute("error.type", error_kind or type(exc).__qualname__)
        if isinstance(exc, Exception):
            span.record_exception(exc)


class _Restarting:
    """A restart decided on a traced failure: the failed span's context, for the restart."""

    __slots__ = ("parent",)

    def __init__(self, parent: Any) -> None:
        self.parent = parent


# -- metrics ------------------------------------------------------------------------------

#: One observation: a value and its attributes.
Observation = tuple[float, Mapping[str, Any]]


class MetricSource:
    """An observable instrument Cinema registers with every meter :func:`enable_metrics` got.

    :param name: the instrument's name, e.g. ``"cinema.actor.messages"``
    :param kind: ``"counter"`` (monotonic), ``"updown"`` (a count that goes both ways) or
        ``"gauge"``
    :param unit: UCUM unit, e.g. ``"{message}"``, ``"s"``, ``"By"``
    :param description: one line
    :param observe: returns the current observations
    """

    __slots__ = ("description", "kind", "name", "observe", "unit")

    def __init__(
        self,
        name: str,
        kind: str,
        unit: str,
        description: str,
        observe: Callable[[], Iterable[Observation]],
    ) -> None:
        if kind not in ("counter", "updown", "gauge"):
            raise ValueError(f"kind must be 'counter', 'updown' or 'gauge', not {kind!r}")
        self.name = name
        self.kind = kind
        self.unit = unit
        self.description = description
        self.observe = observe


_sources: list[MetricSource] = []
_meters: list[Any] = []
_systems: weakref.WeakSet[ActorSystem] = weakref.WeakSet()


def add_metric_source(source: MetricSource) -> None:
    """Register an instrument with the meters enabled so far and with those enabled later."""
    if any(s.name == source.name for s in _sources):
        return
    _sources.append(source)
    for meter in _meters:
        _register(meter, source)


def enable_metrics(meter_provider: Any = None) -> None:
    """Report Cinema's metrics through OpenTelemetry's metrics API.

    Registers observable instruments (read only when the SDK collects) over every running
    :class:`cinema.ActorSystem` in the process, and cinema-remote's and cinema-cluster's
    counters once those are imported. Call it once, at start-up.

    :param meter_provider: the provider; default: OpenTelemetry's global one
    :raises ImportError: ``opentelemetry-api`` is not installed (``pip install
        cinema-core[otel]``)
    """
    from opentelemetry import metrics

    from . import __version__

    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    meter = provider.get_meter("cinema", __version__)
    _meters.append(meter)
    for source in _sources:
        _register(meter, source)


def _register(meter: Any, source: MetricSource) -> None:
    from opentelemetry.metrics import Observation as Obs

    def callback(options: Any) -> Iterable[Any]:
        return [Obs(value, dict(attrs)) for value, attrs in source.observe()]

    make = {
        "counter": meter.create_observable_counter,
        "updown": meter.create_observable_up_down_counter,
        "gauge": meter.create_observable_gauge,
    }[source.kind]
    make(source.name, callbacks=[callback], unit=source.unit, description=source.description)


def track(system: ActorSystem) -> None:
    """Make a running system visible to the metrics (and to :func:`running_systems`)."""
    _systems.add(system)


def running_systems() -> list[ActorSystem]:
    """The :class:`cinema.ActorSystem` instances running in this process now."""
    return [s for s in list(_systems) if s._state == "running"]


def _per_type(field: str) -> Callable[[], Iterable[Observation]]:
    def observe() -> Iterable[Observation]:
        for system in running_systems():
            for name, row in system.stats().actor_types.items():
                yield getattr(row, field), {"cinema.actor.type": name}

    return observe


def _dead_letters() -> Iterable[Observation]:
    for system in running_systems():
        for reason, count in system.dead_letter_counts.items():
            yield count, {"cinema.dead_letter.reason": reason}


for _source in (
    MetricSource(
        "cinema.actor.messages",
        "counter",
        "{message}",
        "Messages handled, per actor type",
        _per_type("messages"),
    ),
    MetricSource(
        "cinema.actor.handling_time",
        "counter",
        "s",
        "Time spent in handlers, per actor type",
        _per_type("handling_seconds"),
    ),
    MetricSource(
        "cinema.actor.mailbox_depth",
        "updown",
        "{message}",
        "Messages queued now, per actor type",
        _per_type("mailbox"),
    ),
    MetricSource(
        "cinema.actor.live", "updown", "{actor}", "Live actors, per actor type", _per_type("live")
    ),
    MetricSource(
        "cinema.actor.failures",
        "counter",
        "{failure}",
        "Failures handed to supervision, per actor type",
        _per_type("failures"),
    ),
    MetricSource(
        "cinema.actor.restarts",
        "counter",
        "{restart}",
        "Restarts by supervision, per actor type",
        _per_type("restarts"),
    ),
    MetricSource(
        "cinema.dead_letters",
        "counter",
        "{message}",
        "Dead letters, per reason",
        _dead_letters,
    ),
):
    add_metric_source(_source)
del _source
