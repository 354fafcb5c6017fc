"""A test probe: an actor that records what it receives, and assertions on it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Self, TypeVar, final

import anyio

from .._actor import Actor
from .._addr import Addr
from .._context import Context
from .._handler import handler
from .._message import Message
from .._system import ActorSystem

__all__ = ["Probe"]

T = TypeVar("T")

#: Seconds :meth:`Probe.expect` and :meth:`Probe.receive` wait by default.
DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class _Watch(Message[None]):
    target: Addr[Actor]


class _ProbeActor(Actor):
    def __init__(self, probe: Probe) -> None:
        self._probe = probe

    @handler
    def watch(self, msg: _Watch, ctx: Context[Self]) -> None:
        ctx.watch(msg.target)

    @handler
    def record(self, msg: object, ctx: Context[Self]) -> None:
        self._probe._arrived(msg)


@final
class Probe:
    """An actor that records every message it receives, for tests to assert on.

    Hand :attr:`addr` to the code under test wherever it expects an address to send to (it
    is an ``Addr[Any]``, so it type-checks as any actor's); then ``await probe.expect(Type)``.
    The probe replies ``None`` to a ``send`` (an ask). Messages are kept in arrival order;
    each one is consumed by the ``expect``/``receive`` call that returns it::

        probe = Probe(system)
        worker.do_send(Job(reply_to=probe.addr))
        done = await probe.expect(JobDone)          # the next message, of this type
        await probe.expect_no_message(within=0.1)   # and nothing after it

    :param system: the running system to spawn the probe's actor in.
    :param name: also register the probe under this name in ``system``'s registry.
    """

    __slots__ = ("_arrival", "_queue", "addr")

    def __init__(self, system: ActorSystem, *, name: str | None = None) -> None:
        self._queue: deque[object] = deque()
        self._arrival = anyio.Event()
        addr = system.spawn(_ProbeActor(self))
        if name is not None:
            system.register(name, addr)
        #: Where to send messages for the probe (typed as any actor's address).
        self.addr: Addr[Any] = addr

    def _arrived(self, msg: object) -> None:
        self._queue.append(msg)
        self._arrival.set()

    async def _next(self, timeout: float, what: str) -> object:
        try:
            with anyio.fail_after(timeout):
                while not self._queue:
                    self._arrival = anyio.Event()
                    await self._arrival.wait()
        except TimeoutError:
            raise AssertionError(
                f"the probe received no message within {timeout} s ({what})"
            ) from None
        return self._queue.popleft()

    @property
    def pending(self) -> list[object]:
        """The messages received and not yet consumed, oldest first."""
        return list(self._queue)

    def watch(self, addr: Addr[Any]) -> None:
        """Watch ``addr``: the probe receives ``cinema.Terminated(addr)`` when it stops for good
        (expect it with ``await probe.expect(Terminated)``)."""
        self.addr.do_send(_Watch(addr))

    async def expect(self, cls: type[T], *, timeout: float = DEFAULT_TIMEOUT) -> T:
        """The next message, which must be an instance of ``cls``.

        :raises AssertionError: no message arrived within ``timeout`` seconds, or the next one
            is of another type.
        """
        msg = await self._next(timeout, f"expected {cls.__qualname__}")
        if not isinstance(msg, cls):
            raise AssertionError(f"the probe expected {cls.__qualname__}, received {msg!r}")
        return msg

    async def receive(self, n: int, *, timeout: float = DEFAULT_TIMEOUT) -> list[object]:
        """The next ``n`` messages, whatever their types, once all have arrived.

        :raises AssertionError: fewer than ``n`` arrived within ``timeout`` seconds in all.
        """
        received: list[object] = []
        deadline = anyio.current_time() + timeout
        for i in range(n):
            left = max(0.0, deadline - anyio.current_time())
            received.append(await self._next(left, f"message {i + 1} of {n}"))
        return received

    async def expect_no_message(self, *, within: float = 0.1) -> None:
        """Wait ``within`` seconds and check that nothing arrived (on a virtual clock the wait
        costs no real time).

        :raises AssertionError: a message arrived (it stays pending).
        """
        if not self._queue:
            with anyio.move_on_after(within):
                self._arrival = anyio.Event()
                await self._arrival.wait()
        if self._queue:
            raise AssertionError(f"the probe expected no message, received {self._queue[0]!r}")

    def __repr__(self) -> str:
        return f"<Probe {len(self._queue)} pending>"
