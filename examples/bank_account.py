"""A bank account that crashes on a bad command and comes back with its balance.

The account is a persistent actor supervised with a restart strategy: a command it cannot
handle (here, a negative deposit) raises in the handler, the supervisor replaces the instance,
and the new instance recovers its balance from the journal (the newest snapshot, then the
events after it) before it handles the next message.

Run it with ``python examples/bank_account.py`` (an in-memory journal) or give a journal URL:
``python examples/bank_account.py sqlite:///bank.db`` (run it twice: the balance survives).
Add ``trio`` to run on trio.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import anyio

from cinema import (
    ActorFailed,
    ActorSystem,
    Context,
    Message,
    ReplyError,
    SupervisorStrategy,
    handler,
)
from cinema.persistence import PersistentActor, open_journal, use_journal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples.persistence.events_pb2 import AccountState, Deposited, Withdrawn

# The crash in this example is on purpose: no crash report on stderr.
logging.getLogger("cinema.crash").setLevel(logging.CRITICAL)


class InsufficientFunds(ReplyError):
    """An expected outcome, answered to the sender: the account keeps running."""


@dataclass(frozen=True)
class Deposit(Message[int]):
    amount: int


@dataclass(frozen=True)
class Withdraw(Message[int]):
    amount: int


@dataclass(frozen=True)
class Balance(Message[int]):
    pass


class Account(PersistentActor[Deposited | Withdrawn]):
    snapshot_every = 3

    def __init__(self, account_id: str) -> None:
        self.persistence_id = f"account-{account_id}"
        self.balance = 0

    def apply(self, event: Deposited | Withdrawn) -> None:  # the only place state changes
        if isinstance(event, Deposited):
            self.balance += event.amount
        else:
            self.balance -= event.amount

    def snapshot_state(self) -> AccountState:
        return AccountState(balance=self.balance)

    def restore(self, state: AccountState) -> None:
        self.balance = state.balance

    def recovery_completed(self, ctx: Context[Self]) -> None:
        print(f"{self.persistence_id} recovered: balance {self.balance}")

    @handler
    async def deposit(self, msg: Deposit, ctx: Context[Self]) -> int:
        if msg.amount <= 0:
            raise ValueError(f"a deposit of {msg.amount}: this instance gives up")
        await self.persist(Deposited(amount=msg.amount))  # durable and applied when it returns
        return self.balance

    @handler
    async def withdraw(self, msg: Withdraw, ctx: Context[Self]) -> int:
        if msg.amount > self.balance:
            raise InsufficientFunds(f"balance {self.balance} < {msg.amount}")
        await self.persist(Withdrawn(amount=msg.amount))
        return self.balance

    @handler
    def get(self, msg: Balance, ctx: Context[Self]) -> int:
        return self.balance


async def main(url: str) -> None:
    async with open_journal(url) as journal, ActorSystem() as system:
        use_journal(system, journal)
        account = system.spawn_with_strategy(
            lambda: Account("alice"), SupervisorStrategy.restart(max_restarts=3, within=60)
        )
        print("deposit 100 ->", await account.send(Deposit(100)))
        print("withdraw 30 ->", await account.send(Withdraw(30)))
        try:
            await account.send(Withdraw(1000))
        except InsufficientFunds as exc:
            print("withdraw 1000 refused:", exc)
        try:
            await account.send(Deposit(-5))
        except ActorFailed as exc:
            print("deposit -5 crashed the account:", exc.__cause__)
        print("balance after the restart ->", await account.send(Balance()))
        print("deposit 5 ->", await account.send(Deposit(5)))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "trio"]
    anyio.run(
        main,
        args[0] if args else "memory://bank",
        backend="trio" if "trio" in sys.argv else "asyncio",
    )
