"""Actors for the incremental-cache and daemon tests; the tests edit this file."""

from typing import Self

from cinema import Actor, Context, Message, handler


class Greet(Message[str]):
    pass


class Farewell(Message[None]):
    pass


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return "hello"

    def farewell(self, msg: Farewell, ctx: Context[Self]) -> None:  # not (yet) a handler
        pass
