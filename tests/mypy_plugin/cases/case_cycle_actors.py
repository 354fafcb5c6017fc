"""An import cycle with case_cycle_senders.py: the modules are analyzed together."""

from typing import Self

import case_cycle_senders

from cinema import Actor, Context, Message, handler


class Order(Message[int]):
    pass


class Shop(Actor):
    @handler
    def order(self, msg: Order, ctx: Context[Self]) -> int:
        return 1

    @handler
    def refund(self, msg: case_cycle_senders.Refund, ctx: Context[Self]) -> None:
        pass
