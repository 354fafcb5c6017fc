"""The connection pool that a :class:`~cinema.cluster.ClusterNode` and its
:class:`~cinema.cluster.ClusterClient` share: one remote connection per peer address."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, final

import anyio

from cinema.abc import Connection
from cinema.remote import RemoteClient

__all__ = ["ConnectionPool"]

log = logging.getLogger("cinema.cluster")

#: How long one connection attempt may take.
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
#: Pooled connections unused for longer are replaced before use (peers close idle ones).
DEFAULT_MAX_IDLE: Final = 120.0


@final
class ConnectionPool:
    """Pooled :class:`~cinema.remote.RemoteClient` connections, one per peer address.

    A connection is made on first use and reused by every caller (gossip and actor calls
    alike): many requests travel on it at once, matched by correlation id. It is replaced when
    it died, when it was made to an earlier incarnation of the node now at that address (the
    node restarted), or when it sat idle for ``max_idle`` seconds; :meth:`discard` drops it at
    once (the node does so when a member goes Down or leaves), so that calls in flight on it
    fail fast instead of waiting for an answer that will not come.

    :param connect: opens a connection to an address.
    :param secret: the shared secret (see cinema-remote).
    :param node_id: this node's id, told to peers in the handshake.
    :param incarnation_at: the incarnation of the live member at an address, if any.
    """

    def __init__(
        self,
        connect: Callable[[str], Awaitable[Connection]],
        *,
        secret: bytes | str | None,
        node_id: str,
        incarnation_at: Callable[[str], int | None],
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_idle: float = DEFAULT_MAX_IDLE,
    ) -> None:
        self._connect = connect
        self._secret = secret
        self._node_id = node_id
        self._incarnation_at = incarnation_at
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._clients: dict[str, RemoteClient] = {}
        # address -> incarnation of the node there when the connection was made
        self._lives: dict[str, int] = {}
        self._used: dict[str, float] = {}  # address -> when the connection was last used
        self._locks: dict[str, anyio.Lock] = {}
        self._discarded: list[RemoteClient] = []

    def __contains__(self, address: str) -> bool:
        return address in self._clients

    def peek(self, address: str) -> RemoteClient | None:
        """The pooled client for ``address`` if there is one, without using or checking it."""
        return self._clients.get(address)

    @property
    def addresses(self) -> list[str]:
        """The addresses with a pooled connection, sorted."""
        return sorted(self._clients)

    def _usable(self, address: str, incarnation: int | None) -> RemoteClient | None:
        client = self._clients.get(address)
        if client is None or client.is_closed:
            return None
        if incarnation is not None and self._lives.get(address, incarnation) != incarnation:
            return None  # made to an earlier life of the node: that process is gone
        now = time.monotonic()
        if now - self._used.get(address, now) > self.max_idle:
            # The peer's server may have closed it for idleness (remote's default is 300 s),
            # which this side only learns when a request fails: do not risk a call on it.
            return None
        self._used[address] = now
        return client

    async def get(self, address: str, incarnation: int | None = None) -> RemoteClient:
        """The pooled client for ``address``, connecting if there is none, it died, or it was
        made to another incarnation than ``incarnation``.

        :raises OSError: or ``TimeoutError``, when connecting fails.
        """
        client = self._usable(address, incarnation)
        if client is not None:
            return client
        lock = self._locks.setdefault(address, anyio.Lock())
        async with lock:
            client = self._usable(address, incarnation)
            if client is not None:
                return client
            await self.drop(address)
            with anyio.fail_after(self.connect_timeout):
                conn = await self._connect(address)
            client = RemoteClient(conn, secret=self._secret, node=self._node_id)
            self._clients[address] = client
            self._used[address] = time.monotonic()
            life = incarnation if incarnation is not None else self._incarnation_at(address)
            if life is None:
                self._lives.pop(address, None)
            else:
                self._lives[address] = life
            return client

    def discard(self, address: str) -> None:
        """Forget the connection to ``address`` now; it is closed by the next
        :meth:`close_discarded` (callers without an event loop at hand use this)."""
        client = self._clients.pop(address, None)
        self._lives.pop(address, None)
        self._used.pop(address, None)
        if not self._locks.get(address, anyio.Lock()).locked():
            self._locks.pop(address, None)
        if client is not None:
            self._discarded.append(client)

    @property
    def has_discarded(self) -> bool:
        """Whether discarded connections wait to be closed."""
        return bool(self._discarded)

    async def close_discarded(self) -> None:
        """Close the connections :meth:`discard` forgot (their calls in flight fail)."""
        while self._discarded:
            client = self._discarded.pop()
            await _close(client)

    async def drop(self, address: str) -> None:
        """Close and forget the connection to ``address``, if any."""
        client = self._clients.pop(address, None)
        self._lives.pop(address, None)
        self._used.pop(address, None)
        if client is not None:
            await _close(client)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        with anyio.CancelScope(shield=True):
            for address in list(self._clients):
                await self.drop(address)
            await self.close_discarded()


async def _close(client: RemoteClient) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await client.aclose()
        except Exception as exc:  # a broken peer must not break whoever closes
            log.debug("closing a connection failed: %r", exc)


ConnectionPool.__module__ = "cinema.cluster"
