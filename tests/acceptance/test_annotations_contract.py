"""Acceptance: handler annotations are resolved with the defining module's globals, also under
``from __future__ import annotations`` (this module uses it), no later than the first spawn;
one that cannot be resolved raises a clear error naming the handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import pytest

from cinema import (
    Actor,
    ActorSystem,
    CinemaError,
    Context,
    HandlerDefinitionError,
    Message,
    handler,
)


class EarlyActor(Actor):
    """Its handler names a message class defined further down this module."""

    @handler
    def late(self, msg: LateMessage, ctx: Context[Self]) -> str:
        return f"late {msg.n}"

    @handler
    async def later(self, msg: LaterMessage | LateMessage2, ctx: Context[Self]) -> int:
        return msg.n * 10


@dataclass
class LateMessage(Message[str]):
    n: int


@dataclass
class LaterMessage(Message[int]):
    n: int


@dataclass
class LateMessage2(Message[int]):
    n: int


def define_and_spawn_broken(system: ActorSystem) -> None:
    class Broken(Actor):
        @handler
        def on_ghost(self, msg: GhostMessage, ctx: Context[Self]) -> None:  # type: ignore[name-defined]  # noqa: F821 - unresolvable on purpose
            pass

    system.spawn(Broken())


def define_and_spawn_unannotated(system: ActorSystem) -> None:
    class Unannotated(Actor):
        @handler
        def on_anything(self, msg, ctx: Context[Self]) -> None:  # type: ignore[no-untyped-def, cinema-handler]  # no annotation on purpose
            pass

    system.spawn(Unannotated())


@pytest.mark.anyio
async def test_string_annotations_naming_later_module_globals_resolve_at_spawn() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(EarlyActor())
        assert await addr.send(LateMessage(1)) == "late 1"
        assert await addr.send(LaterMessage(2)) == 20
        assert await addr.send(LateMessage2(3)) == 30


@pytest.mark.anyio
async def test_an_unresolvable_annotation_raises_a_clear_error_naming_the_handler() -> None:
    async with ActorSystem() as system:
        # "no later than the first spawn": class creation may already raise, or the spawn.
        with pytest.raises(HandlerDefinitionError) as info:
            define_and_spawn_broken(system)
        error = info.value
        assert isinstance(error, CinemaError)
        assert isinstance(error, TypeError)
        assert "on_ghost" in str(error)
        assert "GhostMessage" in str(error)


@pytest.mark.anyio
async def test_a_handler_without_a_message_annotation_raises_naming_the_handler() -> None:
    async with ActorSystem() as system:
        with pytest.raises(HandlerDefinitionError) as info:
            define_and_spawn_unannotated(system)
        assert "on_anything" in str(info.value)


@pytest.mark.anyio
async def test_a_broken_class_does_not_affect_other_actors() -> None:
    async with ActorSystem() as system:
        with pytest.raises(HandlerDefinitionError):
            define_and_spawn_broken(system)
        assert await system.spawn(EarlyActor()).send(LateMessage(4)) == "late 4"
