"""ClusterNode: the membership engine on a real port, next to the node's remote actors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self, final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from cinema._addr import Addr
from cinema._errors import CinemaError
from cinema.abc import Transport
from cinema.remote._client import RemoteClient
from cinema.remote._errors import RemoteError
from cinema.remote._node import RemoteHandler, Router
from cinema.remote._server import RemoteServer, resolve_transport

from ._membership import Membership
from ._memory import MemoryTransport
from ._types import MemberEvent, Node, NodeStatus

__all__ = [
    "DEFAULT_GOSSIP_INTERVAL",
    "DEFAULT_SUSPECT_TIMEOUT",
    "GOSSIP_EXTENSION",
    "ClusterNode",
]

log = logging.getLogger("cinema.cluster")

#: The ``Extension.kind`` that carries gossip on the remote protocol's connections.
GOSSIP_EXTENSION: Final = "cinema.cluster.gossip"
#: Default seconds between gossip rounds.
DEFAULT_GOSSIP_INTERVAL: Final = 0.5
#: Default seconds without news before a member is suspected (Down after twice that).
DEFAULT_SUSPECT_TIMEOUT: Final = 5.0
# How long one connection attempt may take.
_CONNECT_TIMEOUT: Final = 2.0
# Pooled connections unused for longer are replaced before use (peers close idle ones).
_MAX_IDLE: Final = 120.0
# How long a leave notice may take to go out when the node stops.
_LEAVE_TIMEOUT: Final = 1.0


def _with_port(address: str, port: int) -> str:
    scheme, sep, rest = address.rpartition("://")
    host = rest.rpartition(":")[0] if ":" in rest else rest
    return f"{scheme}{sep}{host or '0.0.0.0'}:{port}"


@final
class ClusterNode:
    """One member of a cluster: serves gossip and remote actor messages on one port.

    The structured form is an async context manager::

        async with ClusterNode("node-2", "127.0.0.1:9002", handler=router,
                               seeds=["127.0.0.1:9001"]) as node:
            await node.register_actor("pingpong", "PingPong")
            ...

    Entering binds the port (so an address in use fails here), starts gossiping and joins the
    seeds in the background: seeds that are not up yet are retried every round, so starting never
    fails because of them. Leaving the block (normally or by an exception) tells the peers that
    this node leaves (they show it ``LEFT``), then stops serving; when the block is cancelled, the
    node stops at once without a goodbye, as if it crashed (the peers find it Down).

    The seed's building blocks exist too, each running until cancelled (for
    ``task_group.start_soon``): :meth:`start_server`, :meth:`start_gossip_server`,
    :meth:`start_periodic_gossip`.

    State queries (:meth:`members`, :meth:`lookup_actor`, :meth:`actors`, :meth:`add_member`) are
    plain methods: they read or change local state only. Calls that may talk to peers
    (:meth:`join`, :meth:`leave`, :meth:`register_actor`, :meth:`unregister_actor`) are
    coroutines.

    :param node_id: this node's id, unique in the cluster; reuse it when restarting the node.
    :param addr: the address peers reach this node at (``"host:port"``, ``"mem://name"``...).
    :param handler: serves remote actor messages (a built ``MessageRouter`` or
        ``node.handler(...)``); without one, actor requests get ``UnknownMessageType`` errors.
    :param seeds: addresses of nodes to join through (this node's own address is ignored).
    :param gossip_interval: seconds between gossip rounds (default 0.5).
    :param suspect_timeout: seconds without news of a member before it is ``SUSPECT``; ``DOWN``
        after twice that (default 5.0).
    :param bind: the address to listen on, when it differs from ``addr`` (e.g. ``"0.0.0.0:9002"``
        behind NAT or in a container); default: ``addr``.
    :param secret: shared secret required from peers, and proved to them (see cinema-remote).
    :param transport: transport for listening and connecting; default: the plugin for the
        address's scheme.
    """

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        handler: RemoteHandler | None = None,
        seeds: Iterable[str] = (),
        gossip_interval: float = DEFAULT_GOSSIP_INTERVAL,
        suspect_timeout: float = DEFAULT_SUSPECT_TIMEOUT,
        bind: str | None = None,
        secret: bytes | str | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not gossip_interval > 0:
            raise ValueError(f"gossip_interval must be positive, not {gossip_interval!r}")
        self.id = node_id
        self.addr = addr
        self.handler = handler
        self.gossip_interval = float(gossip_interval)
        self.suspect_timeout = float(suspect_timeout)
        self.bind = bind
        self._secret = secret
        self._transport = transport
        self._engine = Membership(node_id, addr, suspect_timeout=suspect_timeout, now=self._now())
        self._seeds = [s for s in seeds if s != addr]  # once: ``seeds`` may be an iterator
        self._engine.add_seeds(self._seeds)
        self._clients: dict[str, RemoteClient] = {}
        # address -> incarnation of the node there when the pooled connection was made
        self._client_lives: dict[str, int] = {}
        self._client_used: dict[str, float] = {}  # address -> when the connection was last used
        self._connecting: dict[str, anyio.Lock] = {}
        self._in_flight: set[str] = set()
        self._subscribers: list[Addr[Any]] = []
        self._task_group: TaskGroup | None = None
        self._server: RemoteServer | None = None
        self._left = False
        self._changed: anyio.Event | None = None  # made on demand by wait_until()

    # ---------------------------------------------------------------- clock and transport

    @staticmethod
    def _now() -> float:
        # One clock for both anyio backends (trio's clock has its own origin).
        return time.monotonic()

    def _transport_for(self, address: str) -> Transport:
        transport = self._transport
        if transport is None and address.startswith("mem://"):
            transport = MemoryTransport()
        if isinstance(transport, MemoryTransport):
            # Bound to our name, so that the network's partitions apply to our connections.
            return transport.bound_to(self.addr)
        return resolve_transport(address, transport)

    # ---------------------------------------------------------------- structured form

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self._serve, self.bind or self.addr, self.handler)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        self._task_group = tg
        tg.start_soon(self.start_periodic_gossip, self.gossip_interval, self.suspect_timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._task_group = self._task_group, None
        assert tg is not None
        cancelled = exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class())
        try:
            # Cancellation means "stop now" (and is how a crash is simulated): no goodbye then.
            if not cancelled:
                await self.leave()
        finally:
            tg.cancel_scope.cancel()
            await self._close_clients()
            # A cancellation goes through the task group, as anyio's cancel scopes expect; the
            # block's own exception (if any) propagates as it is, not wrapped in an
            # ExceptionGroup: the node's tasks were only cancelled, never failed.
            if cancelled:
                result = await tg.__aexit__(exc_type, exc, tb)
            else:
                result = await tg.__aexit__(None, None, None)
        return result if cancelled else None

    # ---------------------------------------------------------------- building blocks

    async def start_server(
        self, port: int | None = None, handler: RemoteHandler | None = None
    ) -> None:
        """Serve gossip and actor messages on one port until cancelled.

        :param port: the port to listen on (host from ``bind`` or ``addr``); ``None``: listen on
            ``bind`` or ``addr`` as given.
        :param handler: serves actor messages (default: the ``handler`` given to the node).
        """
        where = self.bind or self.addr
        if port is not None:
            where = _with_port(where, port)
        await self._serve(where, handler if handler is not None else self.handler)

    async def start_gossip_server(self, port: int | None = None) -> None:
        """Serve gossip (and, if the node has a handler, actor messages) until cancelled."""
        await self.start_server(port)

    async def _serve(
        self,
        where: str,
        handler: RemoteHandler | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        server = await RemoteServer.bind(
            where,
            handler if handler is not None else Router(None, {}),
            transport=self._transport_for(where),
            secret=self._secret,
            node=self.id,
            extensions={GOSSIP_EXTENSION: self._on_gossip},
        )
        self._server = server
        task_status.started()
        try:
            await server.run()
        finally:
            self._server = None

    @property
    def listening_address(self) -> str | None:
        """The address the server is bound to (``None`` while not serving)."""
        return None if self._server is None else self._server.address

    async def start_periodic_gossip(
        self, interval: float | None = None, suspect_timeout: float | None = None
    ) -> None:
        """Gossip every ``interval`` seconds until cancelled.

        :param interval: seconds between rounds (default: the node's ``gossip_interval``).
        :param suspect_timeout: change the node's ``suspect_timeout``.
        """
        if interval is not None:
            self.gossip_interval = interval
        if suspect_timeout is not None:
            self.suspect_timeout = suspect_timeout
            self._engine.suspect_timeout = suspect_timeout
        try:
            async with anyio.create_task_group() as tg:
                while not self._left:
                    self.gossip_round(tg)
                    await anyio.sleep(self.gossip_interval)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_clients()

    def gossip_round(self, tg: TaskGroup) -> None:
        """Run one gossip round now, sending its messages in tasks of ``tg``."""
        for out in self._engine.tick(self._now()):
            if out.addr in self._in_flight:
                continue  # the last request to that peer is still unanswered
            self._in_flight.add(out.addr)
            tg.start_soon(self._exchange, out.addr, out.data)
        self._dispatch_events()

    async def _exchange(self, address: str, data: bytes) -> None:
        timeout = max(self.gossip_interval, self.suspect_timeout / 2)
        try:
            with anyio.fail_after(timeout):
                client = await self._client_for(address)
                reply = await client.request_extension(GOSSIP_EXTENSION, data)
        except (OSError, TimeoutError, RemoteError, anyio.BrokenResourceError) as exc:
            log.debug("gossip to %s failed: %r", address, exc)
            await self._drop_client(address)
            return
        finally:
            self._in_flight.discard(address)
        if reply:
            self._engine.receive(reply, self._now(), peer=address, reply=False)
            self._dispatch_events()

    async def _on_gossip(self, data: bytes, peer: str) -> bytes | None:
        reply = self._engine.receive(data, self._now(), peer=peer, reply=True)
        self._dispatch_events()
        return reply if reply is not None else b""

    # ---------------------------------------------------------------- connections

    def _usable(self, address: str, incarnation: int | None) -> RemoteClient | None:
        client = self._clients.get(address)
        if client is None or client.is_closed:
            return None
        if incarnation is not None and self._client_lives.get(address, incarnation) != incarnation:
            return None  # made to an earlier life of the node: that process is gone
        now = self._now()
        if now - self._client_used.get(address, now) > _MAX_IDLE:
            # The peer's server may have closed it for idleness (remote's default is 300 s),
            # which this side only learns when a request fails: do not risk a call on it.
            return None
        self._client_used[address] = now
        return client

    async def _client_for(self, address: str, incarnation: int | None = None) -> RemoteClient:
        """The pooled client for a node's address, connecting if there is none, it died, or it
        was made to an earlier incarnation than ``incarnation`` (the node restarted)."""
        client = self._usable(address, incarnation)
        if client is not None:
            return client
        lock = self._connecting.setdefault(address, anyio.Lock())
        async with lock:
            client = self._usable(address, incarnation)
            if client is not None:
                return client
            await self._drop_client(address)
            with anyio.fail_after(_CONNECT_TIMEOUT):
                conn = await self._transport_for(address).connect(address)
            client = RemoteClient(conn, secret=self._secret, node=self.id)
            self._clients[address] = client
            self._client_used[address] = self._now()
            life = incarnation if incarnation is not None else self._engine.incarnation_at(address)
            if life is None:
                self._client_lives.pop(address, None)
            else:
                self._client_lives[address] = life
            return client

    async def _drop_client(self, address: str) -> None:
        client = self._clients.pop(address, None)
        self._client_lives.pop(address, None)
        self._client_used.pop(address, None)
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections to other nodes (the structured form and
        :meth:`start_periodic_gossip` do it when they end; building-block users who only call
        :meth:`join` or use a :class:`ClusterClient` call it themselves)."""
        with anyio.CancelScope(shield=True):
            await self._close_clients()

    async def _close_clients(self) -> None:
        for address in list(self._clients):
            await self._drop_client(address)

    # ---------------------------------------------------------------- membership

    def add_member(self, node: Node) -> None:
        """Know of a member by hand (as the seed does); it is then gossiped with."""
        self._engine.add_member(node, self._now())
        self._dispatch_events()

    async def join(self, seeds: Sequence[str]) -> bool:
        """Join the cluster through ``seeds`` (addresses).

        Tries each seed once now and keeps them for later: while no other member is known,
        every gossip round contacts them again.

        :returns: whether a seed answered now.
        """
        seeds = [s for s in seeds if s != self.addr]
        self._engine.add_seeds(seeds)
        answered = False
        for out in self._engine.tick(self._now()):
            if out.addr not in seeds:
                continue
            try:
                with anyio.fail_after(max(self.gossip_interval, self.suspect_timeout / 2)):
                    client = await self._client_for(out.addr)
                    reply = await client.request_extension(GOSSIP_EXTENSION, out.data)
            except (OSError, TimeoutError, RemoteError, anyio.BrokenResourceError) as exc:
                log.info(
                    "seed %s not reachable yet (%r); retrying in the background", out.addr, exc
                )
                await self._drop_client(out.addr)
                continue
            if reply:
                self._engine.receive(reply, self._now(), peer=out.addr, reply=False)
                answered = True
        self._dispatch_events()
        return answered

    async def leave(self) -> None:
        """Leave the cluster: tell the peers (they show this node ``LEFT``), stop gossiping."""
        if self._left:
            return
        self._left = True
        notices = self._engine.leave(self._now())
        with anyio.move_on_after(_LEAVE_TIMEOUT, shield=True):
            async with anyio.create_task_group() as tg:
                for out in notices:
                    tg.start_soon(self._notify, out.addr, out.data)
        self._dispatch_events()

    async def _notify(self, address: str, data: bytes) -> None:
        try:
            client = await self._client_for(address)
            await client.send_extension(GOSSIP_EXTENSION, data)
        except (OSError, TimeoutError, RemoteError, anyio.BrokenResourceError) as exc:
            log.debug("leave notice to %s failed: %r", address, exc)

    def members(self) -> list[Node]:
        """Every known member, this node included, sorted by id (Left ones only briefly)."""
        return self._engine.members(self._now())

    def member(self, node_id: str) -> Node | None:
        """The member with this id, or ``None``."""
        return self._engine.member(node_id)

    def status_of(self, node_id: str) -> NodeStatus | None:
        """The status of the member with this id, or ``None`` if it is unknown (or forgotten)."""
        return self._engine.status_of(node_id)

    def _incarnation_of(self, node_id: str) -> int | None:
        return self._engine.incarnation_of(node_id)

    @property
    def incarnation(self) -> int:
        """This node's incarnation (grows across restarts and with every refuted suspicion)."""
        return self._engine.incarnation

    # ---------------------------------------------------------------- registry

    async def register_actor(self, name: str, type_name: str) -> None:
        """Announce that an actor of type ``type_name`` is served here under ``name``.

        The entry spreads with the gossip, and vanishes everywhere when this node goes down or
        leaves. If two nodes register one name, every node picks the same one: the earliest
        registration (by the registering node's wall clock), then the smaller node id.
        """
        self._engine.register_actor(name, type_name)
        await anyio.lowlevel.checkpoint()

    async def unregister_actor(self, name: str) -> bool:
        """Withdraw an actor announced here; ``False`` if it was not registered here."""
        found = self._engine.unregister_actor(name)
        await anyio.lowlevel.checkpoint()
        return found

    def lookup_actor(self, name: str) -> tuple[str, str] | None:
        """Where the actor named ``name`` lives: ``(node id, type name)``, or ``None``."""
        return self._engine.lookup_actor(name)

    def actors(self) -> dict[str, tuple[str, str]]:
        """Every registered actor: name -> ``(node id, type name)``."""
        return self._engine.actors()

    # ---------------------------------------------------------------- events

    def subscribe(self, addr: Addr[Any]) -> None:
        """Send membership events to the actor at ``addr`` (with ``do_send``): :class:`MemberUp`,
        :class:`MemberSuspect`, :class:`MemberDown`, :class:`MemberLeft`.

        The actor needs a handler for them (one for :class:`MemberEvent` takes all four). A
        stopped subscriber is dropped.
        """
        if addr not in self._subscribers:
            self._subscribers.append(addr)

    def unsubscribe(self, addr: Addr[Any]) -> bool:
        """Stop sending events to ``addr``; ``False`` if it was not subscribed."""
        try:
            self._subscribers.remove(addr)
        except ValueError:
            return False
        return True

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checking it after every gossip exchange (the moments
        this node's view can change). Combine with ``anyio.fail_after`` for a deadline::

            with anyio.fail_after(5):
                await node.wait_until(lambda: node.lookup_actor("kv") is not None)
        """
        while not predicate():
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def _dispatch_events(self) -> None:
        # Wake wait_until() callers: the view may have changed.
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        events = self._engine.drain_events()
        if not events or not self._subscribers:
            return
        for addr in list(self._subscribers):
            if not addr.is_alive:
                self._subscribers.remove(addr)
                continue
            for event in events:
                self._deliver(addr, event)

    def _deliver(self, addr: Addr[Any], event: MemberEvent) -> None:
        try:
            addr.do_send(event)
        except CinemaError as exc:
            log.warning("cannot deliver %r to subscriber %r: %s", event, addr, exc)

    def __repr__(self) -> str:
        up = sum(1 for n in self.members() if n.status is NodeStatus.UP)
        return f"<ClusterNode {self.id!r} at {self.addr} ({up} up)>"


ClusterNode.__module__ = "cinema.cluster"
