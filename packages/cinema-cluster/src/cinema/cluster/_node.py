"""ClusterNode: the membership engine on a real port, next to the node's remote actors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self, final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from cinema import Addr, CinemaError, load_plugins
from cinema.abc import Connection, Transport
from cinema.lowlevel import actor_class
from cinema.remote import (
    LocalNode,
    RemoteClient,
    RemoteHandler,
    RemoteServer,
    Router,
    resolve_transport,
)

from ._errors import ClusterError
from ._membership import Membership, Outgoing
from ._memory import MemoryTransport
from ._pool import ConnectionPool
from ._types import MemberDown, MemberEvent, MemberLeft, Node, NodeStatus
from ._validation import BoundedLog, address_check_for, is_loopback

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
# How long a leave notice may take to go out when the node stops.
_LEAVE_TIMEOUT: Final = 1.0
# Sync pages fetched inline by join() (the gossip loop fetches the rest).
_JOIN_PAGES: Final = 64


def _with_port(address: str, port: int) -> str:
    scheme, sep, rest = address.rpartition("://")
    host = rest.rpartition(":")[0] if ":" in rest else rest
    return f"{scheme}{sep}{host or '0.0.0.0'}:{port}"


@final
class ClusterNode:
    """One member of a cluster: serves gossip and remote actor messages on one port.

    The structured form is an async context manager::

        async with ClusterNode("node-2", "127.0.0.1:9002", seeds=["127.0.0.1:9001"]) as node:
            await node.serve("pingpong", system.spawn(PingPong()))
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
    :param handler: serves remote actor messages: a :class:`cinema.remote.LocalNode`, a built
        ``MessageRouter`` or ``node.handler(...)``; by default a ``LocalNode`` named
        ``node_id``, which :meth:`serve` fills (a request for a name nobody serves gets
        ``UnknownActor``).
    :param seeds: addresses of nodes to join through (this node's own address is ignored).
    :param gossip_interval: seconds between gossip rounds (default 0.5).
    :param suspect_timeout: seconds without news of a member before it is ``SUSPECT``; ``DOWN``
        after twice that (default 5.0).
    :param bind: the address to listen on, when it differs from ``addr`` (e.g. ``"0.0.0.0:9002"``
        behind NAT or in a container); default: ``addr``.
    :param secret: shared secret required from peers, and proved to them (see cinema-remote).
    :param transport: transport for listening and connecting; default: the plugin for the
        address's scheme.
    :param insecure: allow serving a non-loopback address without a ``secret``. Without it
        such a node refuses to start (:class:`ClusterError`): anyone who reaches the port could
        otherwise join, corrupt the view and hijack actor names.
    :param tombstone_ttl: seconds Down and Left members stay listed (default 60).
    :param reconnect_window: seconds Down members are remembered and retried, so that
        partitions of any length heal (default 24 h, as Serf).
    :param reconnect_interval: seconds between this node's retries of a random Down member or
        an unanswered seed (default ``2 * suspect_timeout``; the cluster as a whole retries
        far more often, so a healed partition is noticed within a round or two).
    :param sync_interval: seconds between full-state syncs with a random member (default 30,
        longer in proportion beyond 32 members).
    :param max_members: members remembered at most (default 10,000).
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
        insecure: bool = False,
        tombstone_ttl: float | None = None,
        reconnect_window: float = 24 * 3600.0,
        reconnect_interval: float | None = None,
        sync_interval: float = 30.0,
        max_members: int = 10_000,
    ) -> None:
        if not gossip_interval > 0:
            raise ValueError(f"gossip_interval must be positive, not {gossip_interval!r}")
        self.id = node_id
        self.addr = addr
        self.handler: RemoteHandler = handler if handler is not None else LocalNode(node_id)
        self.gossip_interval = float(gossip_interval)
        self.suspect_timeout = float(suspect_timeout)
        self.bind = bind
        self.insecure = insecure
        self._secret = secret
        self._transport = transport
        self._engine = Membership(
            node_id,
            addr,
            suspect_timeout=suspect_timeout,
            now=self._now(),
            tombstone_ttl=tombstone_ttl,
            reconnect_window=reconnect_window,
            reconnect_interval=reconnect_interval,
            sync_interval=sync_interval,
            max_members=max_members,
            address_check=self._address_check(addr, transport),
        )
        self._seeds = [s for s in seeds if s != addr]  # once: ``seeds`` may be an iterator
        self._engine.add_seeds(self._seeds)
        self._pool = ConnectionPool(
            self._connect,
            secret=secret,
            node_id=node_id,
            incarnation_at=self._engine.incarnation_at,
        )
        # address -> when the request in flight there began (one at a time per peer)
        self._in_flight: dict[str, float] = {}
        self._timeouts: dict[str, int] = {}  # address -> exchanges timed out in a row
        self._loop_tg: TaskGroup | None = None  # the gossip loop's, for messages it causes
        self._error_log = BoundedLog(log)
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

    @staticmethod
    def _address_check(addr: str, transport: Transport | None) -> Callable[[str], bool]:
        # Addresses other members announce must be reachable with what is installed here.
        schemes = set(load_plugins().transports) | {"mem"}
        scheme, sep, _ = addr.partition("://")
        schemes.add(scheme if sep else "tcp")
        if transport is not None and not isinstance(transport, MemoryTransport):
            schemes.add(transport.scheme)
        return address_check_for(schemes)

    @property
    def pool(self) -> ConnectionPool:
        """The pooled connections to other nodes (shared with :class:`ClusterClient`)."""
        return self._pool

    async def _connect(self, address: str) -> Connection:
        return await self._transport_for(address).connect(address)

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
        if self._secret is None and not self.insecure and not is_loopback(where):
            raise ClusterError(
                f"refusing to serve {where} without a shared secret: anyone reaching it could"
                " join the cluster and rewrite its view; give secret=..., or insecure=True"
            )
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
                self._loop_tg = tg
                while not self._left:
                    self.gossip_round(tg)
                    await anyio.sleep(self.gossip_interval)
        finally:
            self._loop_tg = None
            with anyio.CancelScope(shield=True):
                await self._close_clients()

    def gossip_round(self, tg: TaskGroup) -> None:
        """Run one gossip round now, sending its messages in tasks of ``tg``."""
        self._send_all(tg, self._engine.tick(self._now()))
        if self._pool.has_discarded:
            tg.start_soon(self._pool.close_discarded)
        self._dispatch_events()

    def _send_all(self, tg: TaskGroup | None, messages: list[Outgoing]) -> None:
        if tg is None:
            return  # not gossiping: what the engine asked for waits for the next round
        now = self._now()
        for out in messages:
            if not out.expects_reply:
                tg.start_soon(self._notify, out.addr, out.data)
                continue
            began = self._in_flight.get(out.addr)
            if began is not None:
                if now - began < 2 * self._exchange_timeout():
                    continue  # the last request there is still unanswered
                # Stuck past its own timeout (a handshake waits on a lost frame, shielded):
                # give up on that connection and try afresh.
                self._pool.discard(out.addr)
            self._in_flight[out.addr] = now
            tg.start_soon(self._exchange, out.addr, out.data, now)

    def _exchange_timeout(self) -> float:
        return max(self.gossip_interval, self.suspect_timeout / 2)

    async def _exchange(self, address: str, data: bytes, began: float) -> None:
        timeout = self._exchange_timeout()
        try:
            with anyio.fail_after(timeout):
                client = await self._client_for(address)
                reply = await client.request_extension(GOSSIP_EXTENSION, data)
        except TimeoutError:
            # Once may be a slow link (a new connection's handshake and first request may not
            # fit one exchange): keep the connection. Twice in a row, the peer is hung: drop
            # it, which also fails the calls waiting on it.
            strikes = self._timeouts.get(address, 0) + 1
            log.debug("gossip to %s timed out (%d in a row)", address, strikes)
            if strikes >= 2:
                self._timeouts.pop(address, None)
                await self._drop_client(address)
            else:
                self._timeouts[address] = strikes
            return
        except Exception as exc:  # every per-peer failure stays with that peer
            log.debug("gossip to %s failed: %r", address, exc)
            await self._drop_client(address)
            return
        finally:
            if self._in_flight.get(address) == began:
                del self._in_flight[address]
        self._timeouts.pop(address, None)
        if reply:
            self._receive(reply, address, reply=False)

    def _receive(self, data: bytes, peer: str, *, reply: bool) -> bytes | None:
        try:
            answer = self._engine.receive(data, self._now(), peer=peer, reply=reply)
        except Exception:  # a bug on bad input must not take the node down with it
            self._error_log.warning("gossip from %s failed to apply", peer[:80], exc_info=True)
            return None
        self._send_all(self._loop_tg, self._engine.take_outgoing())
        self._dispatch_events()
        return answer

    async def _on_gossip(self, data: bytes, peer: str) -> bytes | None:
        reply = self._receive(data, peer, reply=True)
        return reply if reply is not None else b""

    # ---------------------------------------------------------------- connections

    async def _client_for(self, address: str) -> RemoteClient:
        return await self._pool.get(address)

    async def _drop_client(self, address: str) -> None:
        await self._pool.drop(address)

    async def aclose(self) -> None:
        """Close the pooled connections to other nodes (the structured form and
        :meth:`start_periodic_gossip` do it when they end; building-block users who only call
        :meth:`join` or use a :class:`ClusterClient` call it themselves)."""
        with anyio.CancelScope(shield=True):
            await self._close_clients()

    async def _close_clients(self) -> None:
        await self._pool.aclose()

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
        pending = [o for o in self._engine.tick(self._now()) if o.addr in seeds]
        pages = 0
        while pending and pages < _JOIN_PAGES:
            out = pending.pop(0)
            pages += 1
            try:
                with anyio.fail_after(max(self.gossip_interval, self.suspect_timeout / 2)):
                    client = await self._client_for(out.addr)
                    reply = await client.request_extension(GOSSIP_EXTENSION, out.data)
            except Exception as exc:  # every per-peer failure stays with that peer
                log.info(
                    "seed %s not reachable yet (%r); retrying in the background", out.addr, exc
                )
                await self._drop_client(out.addr)
                continue
            if reply:
                self._engine.receive(reply, self._now(), peer=out.addr, reply=False)
                answered = True
                # The seed's full state comes in pages: fetch them now.
                more = self._engine.take_outgoing()
                pending.extend(o for o in more if o.addr == out.addr and o.expects_reply)
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
            if self._loop_tg is None:
                # The gossip loop (which closes the pool when it ends) is gone already: the
                # notices' connections are ours to close.
                await self._pool.aclose()
        self._dispatch_events()

    async def _notify(self, address: str, data: bytes) -> None:
        try:
            with anyio.fail_after(max(self.gossip_interval, self.suspect_timeout / 2)):
                client = await self._client_for(address)
                await client.send_extension(GOSSIP_EXTENSION, data)
        except Exception as exc:  # every per-peer failure stays with that peer
            log.debug("gossip notice to %s failed: %r", address, exc)

    def members(self) -> list[Node]:
        """Every known member, this node included, sorted by id (Left ones only briefly)."""
        return self._engine.members(self._now())

    def member(self, node_id: str) -> Node | None:
        """The member with this id, or ``None``."""
        return self._engine.member(node_id)

    def status_of(self, node_id: str) -> NodeStatus | None:
        """The status of the member with this id, or ``None`` if it is unknown (or forgotten)."""
        return self._engine.status_of(node_id)

    def incarnation_of(self, node_id: str) -> int | None:
        """The incarnation this node knows of a member (``None`` if unknown)."""
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
        self._wake_waiters()
        await anyio.lowlevel.checkpoint()

    async def serve(self, name: str, addr: Addr[Any], *, types: Iterable[type] = ()) -> None:
        """Serve the local actor at ``addr`` under ``name`` on this node's port, with every
        message type it handles (as :meth:`cinema.remote.LocalNode.serve`), and register
        ``name`` in the cluster registry with the actor's class name::

            await node.serve("cart", system.spawn(Cart()))
            count = await ClusterClient(other).remote_addr("cart").call(AddItem("tea", 2))

        :param types: more classes to accept (see :meth:`cinema.remote.LocalNode.serve`).
        :raises TypeError: the node's ``handler`` has no :class:`cinema.remote.LocalNode` to
            serve names with (a custom :class:`cinema.remote.RemoteHandler`).
        """
        self.local_node.serve(name, addr, types=types)
        await self.register_actor(name, actor_class(addr).__qualname__)

    @property
    def local_node(self) -> LocalNode:
        """The :class:`cinema.remote.LocalNode` behind this node's handler (the handler itself
        by default, else the node of the ``MessageRouter`` or ``node.handler(...)`` given).

        :raises TypeError: the handler has none.
        """
        handler = self.handler
        if isinstance(handler, LocalNode):
            return handler
        found = getattr(handler, "node", None)
        if isinstance(found, LocalNode):
            return found
        raise TypeError(
            f"the handler {handler!r} of node {self.id!r} has no LocalNode: give the node"
            " handler=LocalNode(...) (or none) to serve actors by name"
        )

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

    def _wake_waiters(self) -> None:
        # Wake wait_until() callers: the view may have changed.
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _dispatch_events(self) -> None:
        self._wake_waiters()
        events = self._engine.drain_events()
        for event in events:
            if isinstance(event, (MemberDown, MemberLeft)) and event.node.addr in self._pool:
                # Calls in flight to it would wait for answers that will not come.
                self._pool.discard(event.node.addr)
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
