"""Postponed annotations and forward references (a second semantic-analysis pass)."""

from __future__ import annotations

from typing import Self

import cinema
from cinema import Actor, Context, handler

# A forward reference at module level makes mypy analyze this module's top level twice; the
# handler records must come out the same.
later: Later


class Early(Actor):
    @handler
    def on_later(self, msg: Later, ctx: Context[Self]) -> None:
        pass

    @cinema.handler
    async def on_farewell(self, msg: Farewell, ctx: Context[Self]) -> None:
        pass


class Later(cinema.Message[None]):
    pass


class Farewell(cinema.Message[None]):
    pass


class Other(cinema.Message[None]):
    pass


async def use(addr: cinema.Addr[Early]) -> None:
    addr.do_send(Later())
    await addr.send(Farewell())
    addr.do_send(Other())  # E: Actor "Early" has no handler for message type "Other"  [cinema-unhandled]
