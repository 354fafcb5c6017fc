"""Counters of one cluster node (:meth:`ClusterNode.stats`) and the stats protocol extension.

The node counts at its own boundary, never inside the membership engine: suspicions and
recoveries from the membership events it dispatches anyway, its own refutations from its
incarnation, gossip bytes where exchanges are sent and received. Every node also answers
``cinema.observe.stats`` extension requests (over the same authenticated connections as gossip)
with a JSON snapshot: this node, its remote server, and the actor systems of its process. That
is what ``cinema-dashboard`` reads.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cinema.remote import RemoteServerStats
from cinema.telemetry import MetricSource, Observation, add_metric_source, running_systems

from ._types import MemberEvent, MemberSuspect, MemberUp, Node, NodeStatus

if TYPE_CHECKING:
    from ._node import ClusterNode

__all__ = ["STATS_EXTENSION", "ClusterStats"]

#: The ``Extension.kind`` of stats requests (answered with JSON, see :func:`stats_document`).
STATS_EXTENSION: Final = "cinema.observe.stats"


@dataclass(frozen=True, slots=True)
class ClusterStats:
    """A snapshot of one node's view and counters (see :meth:`ClusterNode.stats`).

    :ivar node_id: this node's id
    :ivar addr: this node's address
    :ivar incarnation: this node's incarnation
    :ivar members: every known member, this node included
    :ivar members_by_status: how many members are Up, Suspect, Down, Left
    :ivar suspicions: members this node has seen become Suspect
    :ivar recoveries: members seen Up again after being Suspect (a refuted suspicion)
    :ivar refutations: suspicions of this node that it refuted (incarnation bumps)
    :ivar gossip_exchanges: gossip requests and notices sent
    :ivar gossip_bytes_out: gossip bytes sent (requests, notices, replies)
    :ivar gossip_bytes_in: gossip bytes received
    :ivar registry_size: names in the cluster registry
    :ivar server: the remote server's counters (``None`` while not serving)
    """

    node_id: str
    addr: str
    incarnation: int
    members: tuple[Node, ...]
    members_by_status: Mapping[str, int]
    suspicions: int
    recoveries: int
    refutations: int
    gossip_exchanges: int
    gossip_bytes_out: int
    gossip_bytes_in: int
    registry_size: int
    server: RemoteServerStats | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data."""
        data = {
            name: getattr(self, name)
            for name in (
                "node_id",
                "addr",
                "incarnation",
                "suspicions",
                "recoveries",
                "refutations",
                "gossip_exchanges",
                "gossip_bytes_out",
                "gossip_bytes_in",
                "registry_size",
            )
        }
        data["members"] = [
            {"id": m.id, "addr": m.addr, "status": m.status.value} for m in self.members
        ]
        data["members_by_status"] = dict(self.members_by_status)
        data["server"] = None if self.server is None else asdict(self.server)
        return data


class NodeCounters:
    """What a :class:`ClusterNode` counts."""

    __slots__ = (
        "__weakref__",
        "bytes_in",
        "bytes_out",
        "exchanges",
        "incarnation",
        "recoveries",
        "refutations",
        "suspected",
        "suspicions",
    )

    def __init__(self, incarnation: int) -> None:
        self.suspicions = 0
        self.recoveries = 0
        self.refutations = 0
        self.exchanges = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self.incarnation = incarnation
        self.suspected: set[str] = set()  # ids seen Suspect and not Up since

    def events(self, events: Iterable[MemberEvent], incarnation: int) -> None:
        """Count what the membership events and this node's incarnation tell."""
        for event in events:
            node_id = event.node.id
            if isinstance(event, MemberSuspect):
                self.suspicions += 1
                self.suspected.add(node_id)
            elif node_id in self.suspected:
                self.suspected.discard(node_id)
                if isinstance(event, MemberUp):
                    self.recoveries += 1
        if incarnation > self.incarnation:
            self.refutations += incarnation - self.incarnation
            self.incarnation = incarnation


def snapshot(node: ClusterNode, counters: NodeCounters) -> ClusterStats:
    """The node's :class:`ClusterStats`."""
    members = tuple(node.members())
    by_status = {status.value: 0 for status in NodeStatus}
    for member in members:
        by_status[member.status.value] += 1
    server = node._server
    return ClusterStats(
        node.id,
        node.addr,
        node.incarnation,
        members,
        by_status,
        counters.suspicions,
        counters.recoveries,
        counters.refutations,
        counters.exchanges,
        counters.bytes_out,
        counters.bytes_in,
        len(node.actors()),
        None if server is None else server.stats(),
    )


def stats_document(node: ClusterNode) -> bytes:
    """The JSON answer to a stats request: this node, its registry, its process's systems."""
    document = {
        "version": 1,
        "time": time.time(),
        "node": node.stats().to_dict(),
        "registry": {
            name: {"node": where, "type": kind} for name, (where, kind) in node.actors().items()
        },
        "systems": [system.stats().to_dict() for system in running_systems()],
    }
    return json.dumps(document, separators=(",", ":")).encode()


# Every node's counters, for the metrics.
_nodes: weakref.WeakValueDictionary[int, ClusterNode] = weakref.WeakValueDictionary()


def track(node: ClusterNode) -> None:
    """Make a node visible to the metrics."""
    _nodes[id(node)] = node


def _members() -> Iterable[Observation]:
    for node in list(_nodes.values()):
        for status, count in node.stats().members_by_status.items():
            yield count, {"cinema.cluster.node": node.id, "cinema.cluster.status": status}


def _counter(name: str) -> Any:
    def observe() -> Iterable[Observation]:
        for node in list(_nodes.values()):
            yield getattr(node.stats(), name), {"cinema.cluster.node": node.id}

    return observe


add_metric_source(
    MetricSource("cinema.cluster.members", "updown", "{member}", "Members by status", _members)
)
for _name, _kind, _unit, _what in (
    ("suspicions", "counter", "{suspicion}", "Members seen becoming Suspect"),
    ("refutations", "counter", "{refutation}", "Suspicions of this node it refuted"),
    ("recoveries", "counter", "{member}", "Suspect members seen Up again"),
    ("gossip_bytes_out", "counter", "By", "Gossip bytes sent"),
    ("gossip_bytes_in", "counter", "By", "Gossip bytes received"),
    ("registry_size", "updown", "{name}", "Names in the cluster registry"),
):
    add_metric_source(MetricSource(f"cinema.cluster.{_name}", _kind, _unit, _what, _counter(_name)))
del _name, _kind, _unit, _what

ClusterStats.__module__ = "cinema.cluster"
