"""The error code can be disabled (here per module; disable_error_code works globally too)."""

# mypy: disable-error-code="cinema-unhandled"

from typing import Self

from cinema import Actor, Addr, Context, Message, handler


class Greet(Message[str]):
    pass


class Farewell(Message[None]):
    pass


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return "hello"


def send(addr: Addr[Greeter]) -> None:
    addr.do_send(Farewell())
