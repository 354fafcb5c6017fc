"""User code like API.md's quick start type-checks under mypy --strict, replies inferred."""

from __future__ import annotations

import re
import textwrap

import pytest
from mypy import api

PROGRAM = textwrap.dedent(
    """
    from dataclasses import dataclass
    from typing import Self

    import anyio

    from cinema import Actor, ActorSystem, Addr, Context, Message, handler


    @dataclass
    class Greet(Message[str]):
        name: str


    class Greeter(Actor):
        @handler
        def greet(self, msg: Greet, ctx: Context[Self]) -> str:
            return f"Hello, {msg.name}!"


    class Other(Actor):
        pass


    async def main() -> None:
        async with ActorSystem() as system:
            addr = system.spawn(Greeter())
            reveal_type(addr)
            addr.do_send(Greet("World"))
            reply = await addr.send(Greet("Cinema"))
            reveal_type(reply)
            print(await addr.send(Greet("x"), timeout=1.0))
            found = system.lookup("greeter", Greeter)
            reveal_type(found)
            both = [addr, system.spawn(Other())]
            reveal_type(both)
            actors: list[Addr[Actor]] = both


    anyio.run(main)
    """
)


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("typing")
    program = folder / "program.py"
    program.write_text(PROGRAM)
    stdout, stderr, _ = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(folder / "cache"),
            "--config-file",
            "",
            str(program),
        ]
    )
    return stdout + stderr


def _revealed(output: str) -> list[str]:
    found = re.findall(r'Revealed type is "([^"]+)"', output)
    # mypy 1.x spells builtins out; mypy 2 does not.
    return [t.replace("builtins.", "") for t in found]


def test_reply_type_is_inferred(mypy_output: str) -> None:
    revealed = _revealed(mypy_output)
    assert revealed[0] == "cinema._addr.Addr[program.Greeter]", mypy_output
    assert revealed[1] == "str", mypy_output
    assert revealed[2] in (
        "cinema._addr.Addr[program.Greeter] | None",
        "Union[cinema._addr.Addr[program.Greeter], None]",
    ), mypy_output


def test_addr_is_covariant(mypy_output: str) -> None:
    assert _revealed(mypy_output)[3] == "list[cinema._addr.Addr[cinema._actor.Actor]]"


def test_no_errors_besides_the_reveals(mypy_output: str) -> None:
    errors = [line for line in mypy_output.splitlines() if ": error:" in line]
    assert errors == []
