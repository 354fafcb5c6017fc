"""``cinema.lowlevel.actor_class`` and ``handled_types``: what a remote node needs to serve an
actor by name with every message type it handles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import pytest

from cinema import Actor, ActorSystem, Context, Message, SupervisorStrategy, Terminated, handler
from cinema.lowlevel import actor_class, handled_types

pytestmark = pytest.mark.anyio


@dataclass
class Ping(Message[str]):
    pass


@dataclass
class Pong(Message[str]):
    pass


@dataclass
class Boom(Message[None]):
    pass


class Base(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> str:
        return "base"


class Derived(Base):
    @handler
    def either(self, msg: Pong | Boom, ctx: Context[Self]) -> str:
        if isinstance(msg, Boom):
            raise RuntimeError("boom")
        return "pong"

    @handler
    def gone(self, msg: Terminated, ctx: Context[Self]) -> None:
        pass


def test_handled_types_flatten_unions_and_include_inherited_handlers() -> None:
    assert set(handled_types(Derived)) == {Ping, Pong, Boom, Terminated}
    assert handled_types(Base) == (Ping,)
    assert handled_types(Actor) == ()


async def test_actor_class_of_an_addr_survives_restarts() -> None:
    async with ActorSystem() as system:
        addr = system.spawn_with_strategy(Derived, SupervisorStrategy.restart(3, within=10.0))
        assert actor_class(addr) is Derived
        addr.do_send(Boom())  # fails, and is restarted from the factory
        assert await addr.send(Pong()) == "pong"
        assert actor_class(addr) is Derived
        assert actor_class(system.spawn(Base())) is Base
