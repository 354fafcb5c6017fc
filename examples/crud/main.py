"""CRUD example: an in-memory user store, with no locks.

The store's dictionary is owned by one actor and touched by one handler at a time, so many
concurrent callers need no lock. Run it with ``python examples/crud/main.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Addr, Context, Message, handler

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


if __name__ == "__main__":
    anyio.run(main)
