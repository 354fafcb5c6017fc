"""Counters of remote servers and clients: :meth:`RemoteServer.stats`, :meth:`RemoteClient.stats`.

Plain integer increments where the frames are read and written; the same figures reach the
OpenTelemetry metrics API through :func:`cinema.telemetry.enable_metrics`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cinema.telemetry import MetricSource, Observation, add_metric_source

from .proto import wire_pb2 as pb

__all__ = ["RemoteClientStats", "RemoteCounters", "RemoteServerStats"]


def error_kind_name(kind: int) -> str:
    """``"unknown_actor"`` for ``ERROR_KIND_UNKNOWN_ACTOR``, and so on."""
    try:
        return pb.ErrorKind.Name(kind).removeprefix("ERROR_KIND_").lower()  # type: ignore[arg-type]
    except ValueError:
        return f"kind_{kind}"


class RemoteCounters:
    """The counters one server (over all its connections) or one client keeps."""

    __slots__ = (
        "__weakref__",
        "bytes_in",
        "bytes_out",
        "connections",
        "connections_total",
        "errors",
        "in_flight",
        "requests",
    )

    def __init__(self) -> None:
        self.connections = 0  # open now (a client: 1 while connected)
        self.connections_total = 0
        self.requests = 0
        self.in_flight = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.errors: dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


@dataclass(frozen=True, slots=True)
class RemoteServerStats:
    """A snapshot of a :class:`RemoteServer`'s counters.

    :ivar address: the bound address
    :ivar connections: connections open now
    :ivar connections_total: connections accepted so far
    :ivar requests: requests and one-way messages received
    :ivar in_flight: requests being handled now
    :ivar bytes_in: frame bytes received (length prefixes not counted)
    :ivar bytes_out: reply frame bytes sent (handshake frames not counted)
    :ivar errors: error replies and connection closings, by error kind (``"unknown_actor"``,
        ``"handler_error"``, ``"protocol_error"``...)
    """

    address: str
    connections: int
    connections_total: int
    requests: int
    in_flight: int
    bytes_in: int
    bytes_out: int
    errors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteClientStats:
    """A snapshot of a :class:`RemoteClient`'s counters.

    :ivar peer: the server's address
    :ivar connected: the handshake is done and the connection not lost
    :ivar requests: requests and one-way messages sent
    :ivar in_flight: requests awaiting their replies now
    :ivar bytes_in: frame bytes received
    :ivar bytes_out: frame bytes sent
    :ivar errors: error replies received and connection losses, by kind
    """

    peer: str
    connected: bool
    requests: int
    in_flight: int
    bytes_in: int
    bytes_out: int
    errors: Mapping[str, int] = field(default_factory=dict)


# Every server's and client's counters, for the metrics (kind, counters, who).
_tracked: weakref.WeakKeyDictionary[RemoteCounters, tuple[str, str]] = weakref.WeakKeyDictionary()


def track(counters: RemoteCounters, role: str, who: str) -> None:
    """Make a server's (role ``"server"``) or client's counters visible to the metrics."""
    _tracked[counters] = (role, who)


def _observe(name: str) -> Any:
    def observe() -> Iterable[Observation]:
        for counters, (role, _who) in list(_tracked.items()):
            yield getattr(counters, name), {"cinema.remote.role": role}

    return observe


def _errors() -> Iterable[Observation]:
    for counters, (role, _who) in list(_tracked.items()):
        for kind, count in counters.errors.items():
            yield count, {"cinema.remote.role": role, "error.type": kind}


for _name, _kind, _unit, _what in (
    ("requests", "counter", "{request}", "Requests and one-way messages"),
    ("in_flight", "updown", "{request}", "Requests in flight"),
    ("bytes_in", "counter", "By", "Frame bytes received"),
    ("bytes_out", "counter", "By", "Frame bytes sent"),
    ("connections_total", "counter", "{connection}", "Connections made or accepted"),
    ("connections", "updown", "{connection}", "Connections open now"),
):
    add_metric_source(MetricSource(f"cinema.remote.{_name}", _kind, _unit, _what, _observe(_name)))
add_metric_source(
    MetricSource("cinema.remote.errors", "counter", "{error}", "Errors by kind", _errors)
)
del _name, _kind, _unit, _what

RemoteServerStats.__module__ = "cinema.remote"
RemoteClientStats.__module__ = "cinema.remote"
