"""The in-memory transport (``mem://name``) with fault injection, and its plugin registration.

A :class:`MemoryNetwork` is a simulated network: named listeners, a seeded random source, and
faults the test sets and changes at will (loss, delay with jitter, partitions between sets of
addresses). :class:`MemoryTransport` is a :class:`cinema.abc.Transport` over one network; the
instance the ``cinema`` entry point registers uses the process-wide default network, so
``ClusterNode("a", "mem://a")`` works with no setup. The same network drives the deterministic
:class:`~cinema.cluster.Simulation`, whose clock the test advances.
"""

from __future__ import annotations

import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import ClassVar, Final, final

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from cinema.abc import Connection, Listener, Transport, hookimpl

__all__ = ["MemoryNetwork", "MemoryTransport", "VirtualClock", "cinema_transports"]

log = logging.getLogger("cinema.cluster")

#: Frames buffered per direction of a connection before the sender waits.
_BUFFER: Final = 1024


@final
class VirtualClock:
    """A clock that moves only when told to: seconds since the simulation began."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        """The current simulated time (seconds)."""
        return self._now

    def advance_to(self, when: float) -> None:
        """Move the clock forward to ``when`` (never backwards)."""
        if when > self._now:
            self._now = when


def _strip(address: str) -> str:
    scheme, sep, rest = address.partition("://")
    if not sep:
        return address
    if scheme != "mem":
        raise ValueError(f"MemoryTransport serves mem:// addresses, not {address!r}")
    return rest


@final
class MemoryNetwork:
    """A simulated network with the faults a test asks for.

    Addresses are names, with or without the ``mem://`` prefix (``"mem://a"`` and ``"a"`` are the
    same node).

    :param seed: seeds the random source behind loss and jitter (reproducible runs).
    :param loss: probability that a frame is dropped, each direction independently.
    :param delay: seconds every frame takes.
    :param jitter: extra delay, uniform in ``[0, jitter)`` seconds.
    :param clock: the simulated clock (a new one by default); the asynchronous transport ignores
        it and uses anyio's clock.
    """

    _default: ClassVar[MemoryNetwork | None] = None

    def __init__(
        self,
        *,
        seed: int | str | None = None,
        loss: float = 0.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        clock: VirtualClock | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.delay = delay
        self.jitter = jitter
        self.clock = clock if clock is not None else VirtualClock()
        self._groups: dict[str, int] = {}
        self._listeners: dict[str, _MemoryListener] = {}
        self.frames_sent = 0
        self.frames_dropped = 0

    @classmethod
    def default(cls) -> MemoryNetwork:
        """The process-wide network behind the ``mem://`` transport plugin."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    # ---------------------------------------------------------------- faults

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network into groups: nodes in different groups cannot reach each other.

        Addresses not named in any group stay reachable from everywhere.
        """
        self._groups = {}
        for index, group in enumerate(groups):
            for address in group:
                self._groups[_strip(address)] = index

    def heal(self) -> None:
        """Remove every partition."""
        self._groups = {}

    def reachable(self, src: str, dst: str) -> bool:
        """Whether a partition separates ``src`` from ``dst``."""
        a = self._groups.get(_strip(src))
        b = self._groups.get(_strip(dst))
        return a is None or b is None or a == b

    def transit(self, src: str, dst: str) -> float | None:
        """Decide the fate of one frame: its delay in seconds, or ``None`` if it is lost."""
        self.frames_sent += 1
        if not self.reachable(src, dst) or (self.loss > 0 and self.rng.random() < self.loss):
            self.frames_dropped += 1
            return None
        extra = self.rng.random() * self.jitter if self.jitter > 0 else 0.0
        return self.delay + extra

    # ---------------------------------------------------------------- transport side

    def _bind(self, name: str, listener: _MemoryListener) -> None:
        if name in self._listeners:
            raise OSError(f"mem://{name} is already bound")
        self._listeners[name] = listener

    def _unbind(self, name: str, listener: _MemoryListener) -> None:
        if self._listeners.get(name) is listener:
            del self._listeners[name]


class _MemoryConnection(Connection):
    def __init__(
        self,
        network: MemoryNetwork,
        local: str,
        remote: str,
        send: ObjectSendStream[bytes],
        receive: ObjectReceiveStream[bytes],
    ) -> None:
        self._network = network
        self._local = local
        self._remote = remote
        self._send = send
        self._receive = receive
        self._closed = False

    @property
    def remote_address(self) -> str:
        return f"mem://{self._remote}"

    async def send_frame(self, frame: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        fate = self._network.transit(self._local, self._remote)
        if fate is None:
            await anyio.lowlevel.checkpoint()
            return
        if fate > 0:
            await anyio.sleep(fate)
        try:
            await self._send.send(bytes(frame))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise anyio.BrokenResourceError(f"mem://{self._remote} closed the connection") from None

    async def receive_frame(self) -> bytes:
        if self._closed:
            raise anyio.ClosedResourceError
        return await self._receive.receive()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._send.aclose()
        await self._receive.aclose()


class _MemoryListener(Listener):
    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self._network = network
        self._name = name
        self._incoming_send, self._incoming = anyio.create_memory_object_stream[Connection](
            math.inf
        )
        self._closed = False

    @property
    def address(self) -> str:
        return f"mem://{self._name}"

    def _accept(self, client: str) -> Connection:
        if self._closed:
            raise ConnectionRefusedError(f"mem://{self._name} is not listening")
        a_send, b_receive = anyio.create_memory_object_stream[bytes](_BUFFER)
        b_send, a_receive = anyio.create_memory_object_stream[bytes](_BUFFER)
        server_side = _MemoryConnection(self._network, self._name, client, b_send, b_receive)
        client_side = _MemoryConnection(self._network, client, self._name, a_send, a_receive)
        self._incoming_send.send_nowait(server_side)
        return client_side

    async def serve(self, handler: Callable[[Connection], Awaitable[None]]) -> None:
        async def run(conn: Connection) -> None:
            # One connection's failure is that connection's alone: a peer that hangs up
            # mid-handshake must not take the listener (and the node) down, as it cannot
            # on a TCP listener either.
            try:
                await handler(conn)
            except* (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                log.debug("mem://%s: a connection from %s broke", self._name, conn.remote_address)
            finally:
                with anyio.CancelScope(shield=True):
                    await conn.aclose()

        async with anyio.create_task_group() as tg:
            async for conn in self._incoming:
                tg.start_soon(run, conn)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._network._unbind(self._name, self)
        await self._incoming_send.aclose()
        # Connections made while the server stopped serving were never handed to it: close
        # them, so that their clients see the end instead of waiting.
        while True:
            try:
                conn = self._incoming.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            with anyio.CancelScope(shield=True):
                await conn.aclose()
        await self._incoming.aclose()


@final
class MemoryTransport(Transport):
    """The ``mem://`` transport: connections inside one process, over a :class:`MemoryNetwork`.

    Frames crossing a partition, or lost to the network's ``loss``, vanish silently (as on a
    real network, the peer's timeouts notice); connecting across a partition, or to a name
    nobody listens on, raises ``ConnectionRefusedError``.

    :param network: the network to use; default: :meth:`MemoryNetwork.default`.
    :param local: the name connections made through this instance come from, so that
        partitions apply to them (a :class:`~cinema.cluster.ClusterNode` on ``mem://`` uses one
        bound to its own name); default: a fresh anonymous name per connection.
    """

    scheme: ClassVar[str] = "mem"

    def __init__(self, network: MemoryNetwork | None = None, *, local: str | None = None) -> None:
        self._network = network
        self._local = None if local is None else _strip(local)

    def bound_to(self, local: str) -> MemoryTransport:
        """The same transport, with connections coming from ``local`` (see ``local``)."""
        return MemoryTransport(self._network, local=local)

    @property
    def network(self) -> MemoryNetwork:
        """The network this transport uses."""
        return self._network if self._network is not None else MemoryNetwork.default()

    async def connect(
        self, address: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> Connection:
        if ssl_context is not None:
            raise ValueError("the mem:// transport does not do TLS")
        name = _strip(address)
        network = self.network
        await anyio.lowlevel.checkpoint()
        listener = network._listeners.get(name)
        if listener is None:
            raise ConnectionRefusedError(f"nothing listens on mem://{name}")
        local = self._local if self._local is not None else _client_name()
        if not network.reachable(local, name):
            raise ConnectionRefusedError(f"mem://{name} is on the other side of a partition")
        return listener._accept(local)

    async def listen(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Listener:
        if ssl_context is not None:
            raise ValueError("the mem:// transport does not do TLS")
        name = _strip(address)
        if not name:
            raise ValueError(f"mem:// address needs a name: {address!r}")
        network = self.network
        listener = _MemoryListener(network, name)
        network._bind(name, listener)
        return listener


_client_counter = 0


def _client_name() -> str:
    global _client_counter
    _client_counter += 1
    return f"client-{_client_counter}"


@hookimpl
def cinema_transports() -> Iterable[Transport]:
    """The ``cinema`` plugin hook: provide the ``mem://`` transport."""
    return (MemoryTransport(),)


for _cls in (VirtualClock, MemoryNetwork, MemoryTransport):
    _cls.__module__ = "cinema.cluster"
