"""ClusterClient: call actors by name, wherever in the cluster they live."""

from __future__ import annotations

from typing import Any, Final, Generic, NoReturn, TypeVar, final, overload

import anyio

from cinema import Actor, Message
from cinema.remote import ConnectionLost, RemoteAddr, Rpc
from cinema.remote.proto import wire_pb2 as pb

from ._errors import ActorNotInCluster, NodeUnavailable
from ._node import ClusterNode
from ._types import NodeStatus

__all__ = ["ClusterClient", "ClusterRemoteAddr"]

A_co = TypeVar("A_co", bound=Actor, covariant=True)
Req = TypeVar("Req")
Resp = TypeVar("Resp")
R = TypeVar("R")

#: Seconds a call without ``timeout=`` may take (``ClusterClient(default_timeout=...)``).
DEFAULT_CALL_TIMEOUT: Final = 30.0


@final
class ClusterClient:
    """Location-transparent messaging: find actors in the cluster registry, send to them.

    Connections are pooled per node (shared with the node's gossip): one connection per peer
    carries many requests at once, matched by correlation id. A connection that dies is dropped
    and made again on the next call.

    Every call is bounded: one without ``timeout=`` gets ``default_timeout``; and when the
    hosting node goes Down or leaves, its pooled connection is dropped, so that calls in flight
    on it fail at once with :class:`NodeUnavailable`.

    :param node: the local cluster node (its registry and membership are used for lookups).
    :param default_timeout: seconds a call without ``timeout=`` may take (default 30).
    """

    def __init__(self, node: ClusterNode, *, default_timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        if not default_timeout > 0:
            raise ValueError(f"default_timeout must be positive, not {default_timeout!r}")
        self.node = node
        self.default_timeout = float(default_timeout)

    @overload
    def remote_addr(self, actor_type: str, /) -> ClusterRemoteAddr[Actor]: ...

    @overload
    def remote_addr(self, actor_type: type[A_co], name: str) -> ClusterRemoteAddr[A_co]: ...

    def remote_addr(
        self, actor_type: type[A_co] | str, name: str | None = None
    ) -> ClusterRemoteAddr[A_co] | ClusterRemoteAddr[Actor]:
        """The address of the actor registered in the cluster under ``name``:
        ``remote_addr("cart")``, or ``remote_addr(Cart, "cart")`` to type it by its class.

        Nothing is looked up yet: every call resolves the name again, so the address follows
        the actor when it moves to another node.

        :param actor_type: the actor's class (for typing and reprs only), or the name alone.
        """
        if isinstance(actor_type, str):
            if name is not None:
                raise TypeError("remote_addr(name) or remote_addr(actor_type, name)")
            return ClusterRemoteAddr(self, Actor, actor_type)
        if name is None:
            raise TypeError("remote_addr(actor_type, name) needs the name")
        return ClusterRemoteAddr(self, actor_type, name)

    async def wait_for(self, name: str, *, timeout: float | None = None) -> tuple[str, str]:
        """Wait until the actor registered under ``name`` can be called: the registry knows
        it (gossip brought the entry) and its node is neither Down nor gone.

        Woken by the node's view changing (each gossip exchange and local registration), not
        by polling::

            await ClusterClient(node).wait_for("cart", timeout=5)

        :param timeout: seconds to wait at most (default: the client's ``default_timeout``).
        :returns: where it lives: ``(node id, type name)``, as ``lookup_actor``.
        :raises TimeoutError: the name did not become resolvable in time.
        """
        node = self.node
        limit = self.default_timeout if timeout is None else timeout
        found: tuple[str, str] | None = None

        def resolvable() -> bool:
            nonlocal found
            found = node.lookup_actor(name)
            if found is None:
                return False
            member = node.member(found[0])
            return member is not None and member.status not in (NodeStatus.DOWN, NodeStatus.LEFT)

        with anyio.move_on_after(limit):
            await node.wait_until(resolvable)
        if not resolvable():
            raise TimeoutError(f"no actor {name!r} in the cluster after {limit} s")
        assert found is not None
        return found

    async def _resolve(self, actor_type: type[A_co], name: str) -> RemoteAddr[A_co]:
        node = self.node
        location = node.lookup_actor(name)
        if location is None:
            raise ActorNotInCluster(name)
        node_id = location[0]
        member = node.member(node_id)
        if member is None or member.status in (NodeStatus.DOWN, NodeStatus.LEFT):
            raise NodeUnavailable(node_id, "it is down or has left")
        try:
            client = await node.pool.get(member.addr, node.incarnation_of(node_id))
        except (OSError, TimeoutError) as exc:
            raise NodeUnavailable(node_id, f"cannot connect to {member.addr}: {exc}") from exc
        return client.remote_addr(actor_type, "", name)

    async def _forget(self, actor_type: type[A_co], name: str) -> None:
        location = self.node.lookup_actor(name)
        member = None if location is None else self.node.member(location[0])
        if member is not None:
            await self.node.pool.drop(member.addr)

    def __repr__(self) -> str:
        return f"<ClusterClient of {self.node.id!r}>"


@final
class ClusterRemoteAddr(Generic[A_co]):
    """The address of an actor known by its cluster-wide name (made by
    :meth:`ClusterClient.remote_addr`).

    Each call looks the name up in the local registry (a dictionary lookup), then sends over the
    pooled connection to the node that hosts it.

    Errors: :class:`ActorNotInCluster` (an ``UnknownActor``) when no live node registered the
    name; :class:`NodeUnavailable` (a ``ConnectionLost``) when its node is down, has left, cannot
    be reached, or the connection broke during the call; and whatever
    :class:`cinema.remote.RemoteAddr` raises for the call itself.
    """

    __slots__ = ("_client", "actor_type", "name")

    def __init__(self, client: ClusterClient, actor_type: type[A_co], name: str) -> None:
        self._client = client
        self.actor_type = actor_type
        self.name = name

    async def send(self, message: object, *, timeout: float | None = None) -> pb.Envelope:
        """Send a request; return the raw reply :class:`cinema.remote.Envelope` (as the seed)."""
        remote = await self._client._resolve(self.actor_type, self.name)
        try:
            return await remote.send(message, timeout=self._bound(timeout))
        except ConnectionLost as exc:
            await self._lost(exc)

    @overload
    async def call(
        self, rpc: Rpc[Req, Resp], message: Req, /, *, timeout: float | None = None
    ) -> Resp: ...

    @overload
    async def call(self, message: Message[R], /, *, timeout: float | None = None) -> R: ...

    async def call(
        self,
        first: Rpc[Req, Resp] | Message[R],
        message: Req | None = None,
        /,
        *,
        timeout: float | None = None,
    ) -> Resp | R:
        """Send a request; return its decoded reply (as :meth:`cinema.remote.RemoteAddr.call`),
        typed by the message's ``Message[R]``, or by an ``rpc`` for protobuf messages::

            count = await remote.call(AddItem("tea", 2))        # AddItem(Message[int]): int
            PING = rpc(Ping, Pong)
            pong = await remote.call(PING, Ping(msg="hello"))   # Pong
        """
        remote = await self._client._resolve(self.actor_type, self.name)
        try:
            if isinstance(first, Rpc):
                pair: Rpc[Any, Any] = first
                typed: Resp = await remote.call(pair, message, timeout=self._bound(timeout))
                return typed
            if message is not None:
                raise TypeError("call(message) takes one message; use call(rpc, message)")
            reply: R = await remote.call(first, timeout=self._bound(timeout))
            return reply
        except ConnectionLost as exc:
            await self._lost(exc)

    async def do_send(self, message: object) -> None:
        """Send a one-way message; return once it is written."""
        remote = await self._client._resolve(self.actor_type, self.name)
        try:
            with anyio.fail_after(self._client.default_timeout):
                await remote.do_send(message)
        except ConnectionLost as exc:
            await self._lost(exc)

    def _bound(self, timeout: float | None) -> float:
        return self._client.default_timeout if timeout is None else timeout

    async def _lost(self, exc: ConnectionLost) -> NoReturn:
        # The pooled connection is dead: drop it so that the next call connects afresh.
        with anyio.CancelScope(shield=True):
            await self._client._forget(self.actor_type, self.name)
        if isinstance(exc, NodeUnavailable):
            raise exc
        location = self._client.node.lookup_actor(self.name)
        node_id = location[0] if location is not None else "?"
        raise NodeUnavailable(node_id, f"connection lost: {exc}") from exc

    def __repr__(self) -> str:
        return f"<ClusterRemoteAddr {self.actor_type.__qualname__} {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClusterRemoteAddr):
            return NotImplemented
        return (self._client.node, self.name) == (other._client.node, other.name)

    def __hash__(self) -> int:
        return hash((id(self._client.node), self.name))


for _cls in (ClusterClient, ClusterRemoteAddr):
    _cls.__module__ = "cinema.cluster"
