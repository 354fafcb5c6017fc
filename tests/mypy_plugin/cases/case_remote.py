"""RemoteAddr[A].call and ClusterRemoteAddr[A].call, typed by the class given to remote_addr:
A must handle the message, an rpc's reply type must be what A's handler returns, and an untyped
call of a protobuf message is typed by that handler."""

from dataclasses import dataclass
from typing import Self, assert_type

from shop_pb2 import History, Order, Receipt, Refund

from cinema import Actor, Context, Message, handler
from cinema.cluster import ClusterClient
from cinema.remote import RemoteClient, rpc


@dataclass
class Count(Message[int]):
    pass


@dataclass
class Close(Message[None]):
    pass


class Shop(Actor):
    @handler
    def order(self, msg: Order, ctx: Context[Self]) -> Receipt:
        return Receipt(total=1)

    @handler
    def refund(self, msg: Refund, ctx: Context[Self]) -> None:
        pass

    @handler
    def count(self, msg: Count, ctx: Context[Self]) -> int:
        return 1


ORDER = rpc(Order, Receipt)
WRONG = rpc(Order, History)
HISTORY = rpc(History, History)


async def remote(client: RemoteClient, cluster: ClusterClient) -> None:
    shop = client.remote_addr(Shop, "node", "shop")
    assert_type(await shop.call(ORDER, Order(item="tea")), Receipt)
    await shop.call(WRONG, Order(item="tea"))  # E: The rpc expects a "History" reply, but actor "Shop" answers "Order" with a "Receipt"  [cinema-handler]
    await shop.call(HISTORY, History())  # E: Actor "Shop" has no handler for message type "History"  [cinema-unhandled]
    assert_type(await shop.call(Count()), int)
    await shop.call(Close())  # E: Actor "Shop" has no handler for message type "Close"  [cinema-unhandled]
    assert_type(await shop.call(Order(item="tea")), Receipt)  # typed by the handler
    assert_type(await shop.call(Refund()), None)

    anywhere = cluster.remote_addr(Shop, "shop")
    assert_type(await anywhere.call(ORDER, Order(item="tea")), Receipt)
    await anywhere.call(WRONG, Order(item="tea"))  # E: The rpc expects a "History" reply, but actor "Shop" answers "Order" with a "Receipt"  [cinema-handler]
    await anywhere.call(Close())  # E: Actor "Shop" has no handler for message type "Close"  [cinema-unhandled]
    untyped = cluster.remote_addr("shop")  # some actor: nothing is known
    await untyped.call(WRONG, Order(item="tea"))
    await untyped.call(Close())
