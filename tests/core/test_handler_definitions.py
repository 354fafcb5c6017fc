"""Handler definition errors surface at spawn; UnhandledMessage points at a forgotten @handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import pytest

from cinema import (
    Actor,
    ActorSystem,
    Context,
    HandlerDefinitionError,
    Message,
    UnhandledMessage,
    handler,
)

pytestmark = pytest.mark.anyio


@dataclass
class Ping(Message[int]):
    pass


@dataclass
class Pong(Message[int]):
    pass


async def test_a_handler_without_a_ctx_parameter_is_refused_at_spawn() -> None:
    class NoCtx(Actor):
        @handler
        def ping(self, msg: Ping) -> int:  # type: ignore[cinema-handler]  # the mistake under test
            return 1

    async with ActorSystem() as system:
        with pytest.raises(HandlerDefinitionError, match=r"NoCtx\.ping .*no ctx parameter"):
            system.spawn(NoCtx())


async def test_a_handler_taking_varargs_is_accepted() -> None:
    class Varargs(Actor):
        @handler
        def ping(self, msg: Ping, *rest: Any) -> int:
            return len(rest)

    async with ActorSystem() as system:
        assert await system.spawn(Varargs()).send(Ping()) == 1


async def test_two_handlers_for_one_type_are_refused_at_spawn() -> None:
    class Twice(Actor):
        @handler
        def first(self, msg: Ping, ctx: Context[Self]) -> int:
            return 1

        @handler
        def second(self, msg: Ping | Pong, ctx: Context[Self]) -> int:  # type: ignore[cinema-handler]  # the mistake under test
            return 2

    async with ActorSystem() as system:
        with pytest.raises(HandlerDefinitionError, match=r"Twice\.first and .*Twice\.second"):
            system.spawn(Twice())


async def test_a_subclass_may_replace_its_base_handler() -> None:
    class Base(Actor):
        @handler
        def ping(self, msg: Ping, ctx: Context[Self]) -> int:
            return 1

    class Derived(Base):
        @handler
        def other_name(self, msg: Ping, ctx: Context[Self]) -> int:
            return 2

    async with ActorSystem() as system:
        assert await system.spawn(Derived()).send(Ping()) == 2


class Forgetful(Actor):
    @handler
    def ping(self, msg: Ping, ctx: Context[Self]) -> int:
        return 1

    def pong(self, msg: Pong, ctx: Context[Self]) -> int:  # no @handler: the mistake
        return 2


async def test_unhandled_message_names_an_undecorated_method_that_takes_it() -> None:
    async with ActorSystem() as system:
        addr = system.spawn(Forgetful())
        with pytest.raises(UnhandledMessage, match=r"Forgetful\.pong .*not marked @handler"):
            addr.do_send(Pong())  # type: ignore[cinema-unhandled]
        with pytest.raises(UnhandledMessage, match=r"Forgetful\.pong"):
            await addr.send(Pong())  # type: ignore[cinema-unhandled]
        assert await addr.send(Ping()) == 1


async def test_unhandled_message_without_a_candidate_has_no_hint() -> None:
    class Plain(Actor):
        @handler
        def ping(self, msg: Ping, ctx: Context[Self]) -> int:
            return 1

    async with ActorSystem() as system:
        with pytest.raises(UnhandledMessage) as info:
            system.spawn(Plain()).do_send(Pong())  # type: ignore[cinema-unhandled]
        assert "@handler" not in str(info.value)


async def test_a_handler_for_any_is_refused_at_spawn() -> None:
    # typing.Any is a class since Python 3.11, but no message is an instance of it: such a
    # handler would silently never run.
    class Lenient(Actor):
        @handler
        def anything(self, msg: Any, ctx: Context[Self]) -> None:  # type: ignore[cinema-handler]  # the mistake under test
            pass

    async with ActorSystem() as system:
        with pytest.raises(HandlerDefinitionError, match=r"Lenient\.anything .*annotate object"):
            system.spawn(Lenient())
