"""Cinema clusters: gossip membership, failure detection, a distributed actor registry.

Nodes gossip SWIM-style (with Lifeguard's refinements) over the same port that serves remote
actor messages: each knows every member with a status (:class:`NodeStatus`), suspects one that
stays silent for ``suspect_timeout`` after an indirect probe, and marks it Down after twice that
once enough members agree; actors registered on a node can be found from any node by name, and
:class:`ClusterClient` sends to them wherever they live.
"""

from ._client import DEFAULT_CALL_TIMEOUT as DEFAULT_CALL_TIMEOUT
from ._client import ClusterClient as ClusterClient
from ._client import ClusterRemoteAddr as ClusterRemoteAddr
from ._errors import ActorNotInCluster as ActorNotInCluster
from ._errors import ClusterError as ClusterError
from ._errors import GossipRejected as GossipRejected
from ._errors import NodeUnavailable as NodeUnavailable
from ._membership import Membership as Membership
from ._memory import MemoryNetwork as MemoryNetwork
from ._memory import MemoryTransport as MemoryTransport
from ._memory import VirtualClock as VirtualClock
from ._node import DEFAULT_GOSSIP_INTERVAL as DEFAULT_GOSSIP_INTERVAL
from ._node import DEFAULT_SUSPECT_TIMEOUT as DEFAULT_SUSPECT_TIMEOUT
from ._node import GOSSIP_EXTENSION as GOSSIP_EXTENSION
from ._node import ClusterNode as ClusterNode
from ._pool import ConnectionPool as ConnectionPool
from ._simulation import Simulation as Simulation
from ._stats import STATS_EXTENSION as STATS_EXTENSION
from ._stats import ClusterStats as ClusterStats
from ._types import MemberDown as MemberDown
from ._types import MemberEvent as MemberEvent
from ._types import MemberLeft as MemberLeft
from ._types import MemberSuspect as MemberSuspect
from ._types import MemberUp as MemberUp
from ._types import Node as Node
from ._types import NodeStatus as NodeStatus

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_GOSSIP_INTERVAL",
    "DEFAULT_SUSPECT_TIMEOUT",
    "GOSSIP_EXTENSION",
    "STATS_EXTENSION",
    "ActorNotInCluster",
    "ClusterClient",
    "ClusterError",
    "ClusterNode",
    "ClusterRemoteAddr",
    "ClusterStats",
    "ConnectionPool",
    "GossipRejected",
    "MemberDown",
    "MemberEvent",
    "MemberLeft",
    "MemberSuspect",
    "MemberUp",
    "Membership",
    "MemoryNetwork",
    "MemoryTransport",
    "Node",
    "NodeStatus",
    "Simulation",
    "VirtualClock",
]
