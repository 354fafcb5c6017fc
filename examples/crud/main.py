"""CRUD example: an in-memory user store, with no locks, used locally and over the network.

The store's dictionary is owned by one actor and touched by one handler at a time, so many
concurrent callers need no lock. The same dataclass messages work remotely: the last part
serves the store over TCP (``LocalNode.serve``) and calls it through a client, where
``await users.call(GetUser(1))`` is a ``str | None`` exactly as ``await store.send(GetUser(1))``
is locally. Run it with ``python examples/crud/main.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Addr, Context, Message, handler
from cinema.remote import LocalNode, RemoteClient, RemoteServer, TcpTransport

# -- messages: the type parameter of Message is the reply type of send() ----------------------


@dataclass
class CreateUser(Message[None]):
    id: int
    name: str


@dataclass
class GetUser(Message[str | None]):
    id: int


@dataclass
class UpdateUser(Message[bool]):
    id: int
    name: str


@dataclass
class DeleteUser(Message[bool]):
    id: int


# -- the actor ------------------------------------------------------------------------------


class UserStore(Actor):
    def __init__(self) -> None:
        self.users: dict[int, str] = {}

    @handler
    def create(self, msg: CreateUser, ctx: Context[Self]) -> None:
        self.users[msg.id] = msg.name

    @handler
    def get(self, msg: GetUser, ctx: Context[Self]) -> str | None:
        return self.users.get(msg.id)

    @handler
    def update(self, msg: UpdateUser, ctx: Context[Self]) -> bool:
        if msg.id not in self.users:
            return False
        self.users[msg.id] = msg.name
        return True

    @handler
    def delete(self, msg: DeleteUser, ctx: Context[Self]) -> bool:
        return self.users.pop(msg.id, None) is not None


# -- a program that exercises it -----------------------------------------------------------


async def create_many(store: Addr[UserStore], first: int, count: int) -> None:
    """Create ``count`` users from many concurrent tasks: the actor serializes them."""
    async with anyio.create_task_group() as tg:
        for user_id in range(first, first + count):
            tg.start_soon(store.send, CreateUser(user_id, f"user-{user_id}"))


async def over_the_network(store: Addr[UserStore]) -> None:
    """The same store and messages, served on a loopback port and called through a client."""
    node = LocalNode("crud")
    node.serve("users", store)  # every message type UserStore handles, nothing else
    server = await RemoteServer.bind("127.0.0.1:0", node)
    async with server:  # serving in the background
        conn = await TcpTransport().connect(server.address)
        async with RemoteClient(conn) as client:
            users = client.remote_addr(UserStore, "crud", "users")
            print(f"remote get 1 -> {await users.call(GetUser(1))!r}")  # str | None, typed
            await users.call(CreateUser(3, "carol"))
            print(f"remote update 3 -> {await users.call(UpdateUser(3, 'carol lewis'))}")
    print(f"local get 3 -> {await store.send(GetUser(3))!r}")  # one store, two ways in


async def main() -> None:
    async with ActorSystem() as system:
        store = system.spawn(UserStore())

        await store.send(CreateUser(1, "alice"))
        store.do_send(CreateUser(2, "bob"))  # fire and forget; handled in order
        print(f"get 1 -> {await store.send(GetUser(1))!r}")
        print(f"get 2 -> {await store.send(GetUser(2))!r}")

        print(f"update 1 -> {await store.send(UpdateUser(1, 'alice liddell'))}")
        print(f"update 99 -> {await store.send(UpdateUser(99, 'nobody'))}")
        print(f"get 1 -> {await store.send(GetUser(1))!r}")

        print(f"delete 2 -> {await store.send(DeleteUser(2))}")
        print(f"delete 2 again -> {await store.send(DeleteUser(2))}")
        print(f"get 2 -> {await store.send(GetUser(2))!r}")

        await create_many(store, 1000, 100)
        found = 0
        for user_id in range(1000, 1100):
            if await store.send(GetUser(user_id)) == f"user-{user_id}":
                found += 1
        print(f"concurrent creates: {found} of 100 users found")

        await over_the_network(store)


if __name__ == "__main__":
    anyio.run(main)
