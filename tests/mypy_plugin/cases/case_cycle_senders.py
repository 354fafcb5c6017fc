"""The other half of the import cycle: messages used by, and sends to, case_cycle_actors.Shop."""

from case_cycle_actors import Order, Shop

from cinema import Addr, Message


class Refund(Message[None]):
    pass


class Complaint(Message[None]):
    pass


async def buy(shop: Addr[Shop]) -> int:
    shop.do_send(Refund())
    shop.do_send(Complaint())  # E: Actor "Shop" has no handler for message type "Complaint"  [cinema-unhandled]
    return await shop.send(Order())
