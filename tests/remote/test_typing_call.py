"""``call(msg)`` of a dataclass ``Message[R]`` returns ``R`` under ``mypy --strict``, with no
cast and no ``rpc()``, on ``RemoteAddr`` and ``ClusterRemoteAddr``; the protobuf path with
``rpc(Req, Resp)`` keeps its types; a reply used as the wrong type is an error."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from mypy import api

PACKAGES = Path(__file__).resolve().parents[2] / "packages"

PROGRAM = textwrap.dedent(
    """
    from dataclasses import dataclass
    from typing import Self

    from google.protobuf.wrappers_pb2 import Int64Value, StringValue

    from cinema import Actor, Context, Message, handler
    from cinema.cluster import ClusterClient
    from cinema.remote import RemoteClient, rpc


    @dataclass
    class Item:
        name: str
        qty: int


    @dataclass
    class AddItem(Message[int]):
        name: str
        qty: int


    @dataclass
    class Items(Message[list[Item]]):
        pass


    class Cart(Actor):
        @handler
        def add(self, msg: AddItem, ctx: Context[Self]) -> int:
            return 1


    ECHO = rpc(Int64Value, StringValue)


    async def main(client: RemoteClient, cluster: ClusterClient) -> None:
        remote = client.remote_addr(Cart, "shop", "cart")
        count = await remote.call(AddItem("tea", 2))
        reveal_type(count)
        items = await remote.call(Items(), timeout=1.0)
        reveal_type(items)
        by_name = cluster.remote_addr("cart")
        reveal_type(by_name)
        reveal_type(await by_name.call(AddItem("jam", 1)))
        reveal_type(await cluster.remote_addr(Cart, "cart").call(Items()))
        reveal_type(await remote.call(ECHO, Int64Value(value=1)))
        reveal_type(await cluster.remote_addr("cart").call(ECHO, Int64Value(value=1)))
        wrong: str = await remote.call(AddItem("tea", 2))  # line WRONG_REMOTE
        also_wrong: str = await cluster.remote_addr("cart").call(AddItem("tea", 2))  # WRONG_CLUSTER
    """
)


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("typing")
    program = folder / "program.py"
    program.write_text(PROGRAM)
    sources = ":".join(
        str(PACKAGES / name / "src") for name in ("cinema-core", "cinema-remote", "cinema-cluster")
    )
    config = folder / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {sources}\nexplicit_package_bases = True\n")
    stdout, stderr, _ = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(folder / "cache"),
            "--config-file",
            str(config),
            str(program),
        ]
    )
    return stdout + stderr


def _line(marker: str) -> int:
    return next(i for i, text in enumerate(PROGRAM.splitlines(), 1) if marker in text)


def test_call_returns_the_reply_type_of_the_message(mypy_output: str) -> None:
    revealed = [
        t.replace("builtins.", "") for t in re.findall(r'Revealed type is "([^"]+)"', mypy_output)
    ]
    assert revealed == [
        "int",
        "list[program.Item]",
        "cinema.cluster._client.ClusterRemoteAddr[cinema._actor.Actor]",
        "int",
        "list[program.Item]",
        "google.protobuf.wrappers_pb2.StringValue",
        "google.protobuf.wrappers_pb2.StringValue",
    ], mypy_output


def test_a_reply_used_as_another_type_is_an_error(mypy_output: str) -> None:
    errors = [line for line in mypy_output.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [_line("WRONG_REMOTE"), _line("WRONG_CLUSTER")], mypy_output
