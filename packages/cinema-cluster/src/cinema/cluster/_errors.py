"""Errors raised by the cluster. All derive from :class:`cinema.CinemaError`."""

from __future__ import annotations

from cinema import CinemaError
from cinema.remote import ConnectionLost, UnknownActor

__all__ = ["ActorNotInCluster", "ClusterError", "GossipRejected", "NodeUnavailable"]


class ClusterError(CinemaError):
    """Base class of the errors specific to the cluster."""


class GossipRejected(ClusterError, ValueError):
    """A gossip message failed validation; nothing in it was applied."""


class ActorNotInCluster(ClusterError, UnknownActor):
    """No live node of the cluster has registered an actor under that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no live cluster node has registered an actor named {name!r}")


class NodeUnavailable(ClusterError, ConnectionLost):
    """The node hosting the actor is down, has left, or cannot be reached.

    :ivar node_id: the node's id.
    """

    def __init__(self, node_id: str, reason: str) -> None:
        self.node_id = node_id
        super().__init__(f"cluster node {node_id!r} is unavailable: {reason}")


for _cls in (ClusterError, GossipRejected, ActorNotInCluster, NodeUnavailable):
    _cls.__module__ = "cinema.cluster"
