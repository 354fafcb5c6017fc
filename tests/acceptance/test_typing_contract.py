"""Acceptance: user code written as in API.md type-checks under ``mypy --strict`` (no plugin),
replies are typed, ``Message`` and ``Addr`` are covariant, and wrong uses are rejected."""

from __future__ import annotations

import re
import tempfile
import textwrap
from pathlib import Path

import mypy.api

# Each line ending in `# E` must get exactly one mypy error; each `reveal_type` line carries the
# expected type after `# R:`. Every other line must be clean.
SNIPPET = textwrap.dedent(
    """
    from collections.abc import AsyncIterable
    from dataclasses import dataclass
    from datetime import timedelta
    from typing import Self

    import anyio

    from cinema import (
        Actor, ActorSystem, Addr, Context, Message, StreamHandler, SupervisorStrategy,
        Terminated, TimerHandle, handler,
    )


    @dataclass
    class Greet(Message[str]):
        name: str


    @dataclass
    class Count(Message[int]):
        pass


    @dataclass
    class Plain:  # not a Message, e.g. a protobuf class
        n: int


    class Greeter(Actor):
        @handler
        def greet(self, msg: Greet, ctx: Context[Self]) -> str:
            reveal_type(ctx.address())  # R: cinema.Addr[Self]
            return f"Hello, {msg.name}!"

        @handler
        async def count(self, msg: Count, ctx: Context[Self]) -> int:
            handle = ctx.run_later(timedelta(seconds=1), Count())
            reveal_type(handle)  # R: cinema.TimerHandle
            ticker: TimerHandle = ctx.run_interval(0.5, Count())
            ticker.cancel()
            return 1

        @handler
        def gone(self, msg: Terminated, ctx: Context[Self]) -> None:
            ctx.unwatch(msg.addr)

        @handler
        def plain(self, msg: Plain, ctx: Context[Self]) -> int:
            return msg.n


    class Summer(Actor, StreamHandler[int]):
        def __init__(self, numbers: AsyncIterable[int]) -> None:
            self.numbers, self.total = numbers, 0

        def started(self, ctx: Context[Self]) -> None:
            ctx.add_stream(self.numbers)

        def handle(self, item: int, ctx: Context[Self]) -> None:
            self.total += item

        def finished(self, ctx: Context[Self]) -> None:
            ctx.stop()


    class Parent(Actor):
        def started(self, ctx: Context[Self]) -> None:
            child = ctx.spawn_child_with_strategy(
                Greeter, SupervisorStrategy.restart(3, within=10.0)
            )
            reveal_type(child)  # R: cinema.Addr[__main__.Greeter]
            ctx.spawn_child_with_strategy(
                Greeter, SupervisorStrategy.restart(3, within=timedelta(seconds=10))
            )
            ctx.spawn_child(Greeter())
            ctx.watch(child)


    async def main() -> None:
        async with ActorSystem(shutdown_timeout=5.0) as system:
            addr = system.spawn(Greeter())
            reveal_type(addr)  # R: cinema.Addr[__main__.Greeter]
            addr.do_send(Greet("World"))
            print(await addr.send(Greet("Cinema")))
            reply = await addr.send(Greet("Cinema"), timeout=1.5)
            reveal_type(reply)  # R: str
            reveal_type(await addr.send(Count()))  # R: int
            as_object: Message[object] = Greet("x")
            as_actor: Addr[Actor] = addr
            found = system.lookup("greeter", Greeter)
            reveal_type(found)  # R: cinema.Addr[__main__.Greeter] | None
            reveal_type(system.lookup("greeter"))  # R: cinema.Addr[cinema.Actor] | None
            reveal_type(await addr.send(Plain(1)))  # R: object
            system.register("greeter", addr)
            removed: bool = system.unregister("greeter")
            alive: bool = addr.is_alive
            letters: int = system.dead_letters
            system.spawn_with_strategy(Greeter, SupervisorStrategy.escalate())
            bounded = system.spawn(Greeter(), mailbox_capacity=10)
            wrong: int = await addr.send(Greet("x"))  # E
            narrowed: Message[int] = Greet("x")  # E
            narrower: Addr[Summer] = addr  # E
            await addr.send(Greet("x"), 1.0)  # E
            addr.stop()


    anyio.run(main)
    """
)


def test_user_code_type_checks_with_typed_replies_and_covariance(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\npython_version = 3.11\n")
    # A cache shared between runs keeps this test fast; mypy copes with a stale cache.
    cache = Path(tempfile.gettempdir()) / "cinema-acceptance-mypy-cache"
    stdout, stderr, _ = mypy.api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), "--show-error-codes", str(source)]
    )
    assert not stderr, stderr
    lines = SNIPPET.splitlines()
    errors: dict[int, list[str]] = {}
    notes: dict[int, str] = {}
    for line in stdout.splitlines():
        match = re.match(r".*snippet\.py:(\d+): (error|note): (.*)", line)
        if not match:
            continue
        number, kind, text = int(match[1]), match[2], match[3]
        if kind == "error":
            errors.setdefault(number, []).append(text)
        elif text.startswith("Revealed type is"):
            # Where a public class is defined is not part of the contract.
            notes[number] = re.sub(r"\bcinema\._\w+\.", "cinema.", text)
    expected_errors = {i + 1 for i, text in enumerate(lines) if text.rstrip().endswith("# E")}
    assert set(errors) == expected_errors, stdout
    for i, text in enumerate(lines):
        if "# R:" in text:
            expected = text.split("# R:")[1].strip().replace("__main__", "snippet")
            assert notes.get(i + 1) == f'Revealed type is "{expected}"', (text, stdout)
