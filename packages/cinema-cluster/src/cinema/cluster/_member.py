"""The records of the membership engine: a member as one node sees it, a message to send,
the status tables, and the wall clock that incarnations come from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, final

from ._types import (
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    NodeStatus,
)

__all__ = ["EVENT", "LIVE", "RANK", "MemberRecord", "Outgoing", "wall_clock_ms"]

#: How final a status is, within one incarnation: a claim of a higher rank wins.
RANK: Final = {NodeStatus.UP: 0, NodeStatus.SUSPECT: 1, NodeStatus.DOWN: 2, NodeStatus.LEFT: 3}
#: The statuses of a member that takes part in the cluster (gossiped with, watched, resolved).
LIVE: Final = (NodeStatus.UP, NodeStatus.SUSPECT)
#: The event reporting a change to each status.
EVENT: Final[dict[NodeStatus, type[MemberEvent]]] = {
    NodeStatus.UP: MemberUp,
    NodeStatus.SUSPECT: MemberSuspect,
    NodeStatus.DOWN: MemberDown,
    NodeStatus.LEFT: MemberLeft,
}


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch (the default source of incarnations)."""
    return time.time_ns() // 1_000_000


@final
@dataclass(frozen=True, slots=True)
class Outgoing:
    """One gossip message to deliver.

    :ivar addr: where to send it.
    :ivar node_id: the id of the node expected there (``None`` for a seed not yet known).
    :ivar data: the serialized :class:`Gossip` message.
    :ivar expects_reply: deliver as a request whose reply goes to :meth:`Membership.receive`;
        ``False`` for a one-way message (a leave notice, a relayed answer).
    """

    addr: str
    node_id: str | None
    data: bytes
    expects_reply: bool = True


@final
class MemberRecord:
    """One member as this node sees it; this node itself is one too."""

    __slots__ = (
        "accused",
        "actors",
        "addr",
        "awaiting",
        "encoded",
        "heartbeat",
        "id",
        "incarnation",
        "last_direct",
        "pending_addr",
        "probe_since",
        "registry_bytes",
        "registry_version",
        "status",
        "status_since",
        "suspecters",
        "verdict_heartbeat",
    )

    def __init__(self, id: str, addr: str, now: float) -> None:
        self.id = id
        self.addr = addr
        self.status = NodeStatus.UP
        self.incarnation = 0
        self.heartbeat = 0
        self.status_since = now
        # When we last heard from the member itself (or a helper relayed its answer).
        self.last_direct = now
        # Since when a request of ours has gone unanswered (None: none pending).
        self.awaiting: float | None = None
        # Since when it is being probed indirectly (None: not).
        self.probe_since: float | None = None
        # Ids of the nodes that suspect it on their own (for SUSPECT), in order.
        self.suspecters: dict[str, None] = {}
        # The newest heartbeat an accusation of it (Suspect, Down) was made on: a heartbeat
        # heard second hand refutes the accusation only if it is well beyond this one.
        self.verdict_heartbeat = 0
        # A claim about it that we did not adopt (made on older news): told to it, to refute.
        self.accused: NodeStatus | None = None
        # An address it was announced at, not yet confirmed by an answer from there.
        self.pending_addr: str | None = None
        self.registry_version = 0
        self.registry_bytes = 0
        self.encoded: bytes | None = None  # this entry serialized, while it is unchanged
        # name -> (type name, registered_at_ms)
        self.actors: dict[str, tuple[str, int]] = {}


Outgoing.__module__ = "cinema.cluster"
