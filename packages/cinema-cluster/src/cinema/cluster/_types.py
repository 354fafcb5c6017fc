"""Public value types: node status, node snapshots and membership events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import final

__all__ = [
    "MemberDown",
    "MemberEvent",
    "MemberLeft",
    "MemberSuspect",
    "MemberUp",
    "Node",
    "NodeStatus",
]


@final
class NodeStatus(enum.Enum):
    """A member's status as one node sees it.

    ``UP`` -> ``SUSPECT`` after ``suspect_timeout`` without news of the node, ``SUSPECT`` ->
    ``DOWN`` after twice ``suspect_timeout`` (both from the last news); ``LEFT`` after a graceful
    leave. A suspected node that is alive refutes the suspicion and is ``UP`` again.
    """

    UP = "Up"
    SUSPECT = "Suspect"
    DOWN = "Down"
    LEFT = "Left"

    # Members are singletons: identity hashing is correct, and much cheaper than Enum's
    # name-based hash on the gossip hot path (dict lookups keyed by status).
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


@final
@dataclass(frozen=True, slots=True)
class Node:
    """A snapshot of one cluster member.

    :ivar id: the node id, unique in the cluster.
    :ivar addr: the address other nodes reach it at, e.g. ``"127.0.0.1:7001"``.
    :ivar status: its status as this node sees it.
    """

    id: str
    addr: str
    status: NodeStatus = NodeStatus.UP


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """Base class of the membership events a subscriber receives.

    :ivar node: the member, with its new status.
    """

    node: Node


@final
@dataclass(frozen=True, slots=True)
class MemberUp(MemberEvent):
    """A member joined, or came back (refuted a suspicion, restarted, or a partition healed)."""


@final
@dataclass(frozen=True, slots=True)
class MemberSuspect(MemberEvent):
    """A member is suspected: no news of it for ``suspect_timeout``."""


@final
@dataclass(frozen=True, slots=True)
class MemberDown(MemberEvent):
    """A member is down: no news of it for twice ``suspect_timeout``."""


@final
@dataclass(frozen=True, slots=True)
class MemberLeft(MemberEvent):
    """A member left the cluster gracefully."""


for _cls in (NodeStatus, Node, MemberEvent, MemberUp, MemberSuspect, MemberDown, MemberLeft):
    _cls.__module__ = "cinema.cluster"
