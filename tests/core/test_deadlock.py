"""Actors awaiting each other's replies: the ask that closes the cycle fails with Deadlock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import anyio
import pytest

from cinema import (
    Actor,
    ActorFailed,
    ActorSystem,
    Addr,
    CinemaError,
    Context,
    Deadlock,
    Message,
    handler,
)

pytestmark = pytest.mark.anyio


@dataclass
class Call(Message[str]):
    """Ask the next actor in the chain, or answer if there is none."""

    hops: int


class Link(Actor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.next: Addr[Link] | None = None
        self.caught: list[Deadlock] = []

    @handler
    async def call(self, msg: Call, ctx: Context[Self]) -> str:
        if msg.hops == 0 or self.next is None:
            return self.name
        try:
            return self.name + (await self.next.send(Call(msg.hops - 1)))
        except Deadlock as exc:
            self.caught.append(exc)
            raise


def chain(system: ActorSystem, names: str, closed: bool) -> tuple[list[Link], list[Addr[Link]]]:
    actors = [Link(n) for n in names]
    addrs = [system.spawn(a) for a in actors]
    for a, nxt in zip(actors, addrs[1:], strict=False):
        a.next = nxt
    if closed:
        actors[-1].next = addrs[0]
    return actors, addrs


@pytest.mark.parametrize("names", ["ab", "abc"])
async def test_a_cycle_of_asks_fails_the_ask_that_closes_it(names: str) -> None:
    async with ActorSystem() as system:
        actors, addrs = chain(system, names, closed=True)
        last = actors[-1]
        with pytest.raises(ActorFailed) as info:
            await addrs[0].send(Call(len(names) + 5))
        # The last actor's ask back to the first one closed the cycle.
        deadlock = last.caught[0]
        assert isinstance(deadlock, CinemaError)
        assert len(deadlock.cycle) == len(names)
        assert deadlock.cycle[0].startswith("Link#")
        cause = info.value.__cause__
        while isinstance(cause, ActorFailed):
            cause = cause.__cause__
        assert isinstance(cause, Deadlock)


async def test_asks_that_do_not_close_a_cycle_go_through() -> None:
    async with ActorSystem() as system:
        _, addrs = chain(system, "abcd", closed=False)
        assert await addrs[0].send(Call(10)) == "abcd"
        # Two callers awaiting the same actor at once are no cycle either.
        shared = system.spawn(Link("z"))
        results: list[str] = []

        async def via(name: str) -> None:
            head = Link(name)
            head.next = shared
            results.append(await system.spawn(head).send(Call(1)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(via, "x")
            tg.start_soon(via, "y")
        assert sorted(results) == ["xz", "yz"]


class Selfish(Actor):
    @handler
    async def call(self, msg: Call, ctx: Context[Self]) -> str:
        return await ctx.address().send(Call(0))


async def test_awaiting_oneself_is_a_deadlock() -> None:
    async with ActorSystem() as system:
        with pytest.raises(ActorFailed) as info:
            await system.spawn(Selfish()).send(Call(1))
        assert isinstance(info.value.__cause__, Deadlock)
