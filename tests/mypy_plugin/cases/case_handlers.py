"""@handler definitions: the reply type against Message[R], the (self, message, ctx) shape, one
handler per type and class, and annotations the runtime cannot dispatch on."""

# mypy: disable-error-code="no-untyped-def"

from typing import Any, Literal, NewType, Self, TypeVar

from cinema import Actor, Context, Message, handler

T = TypeVar("T")
UserId = NewType("UserId", int)


class Greet(Message[str]):
    pass


class Count(Message[int]):
    pass


class Note(Message[None]):
    pass


class Wrong(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> int:  # E: Handler "Wrong.greet" returns "int", but "Greet" is a Message[str]: its sender awaits a "str"  [cinema-handler]
        return 1

    @handler
    async def count(self, msg: Count, ctx: Context[Self]) -> str:  # E: Handler "Wrong.count" returns "str", but "Count" is a Message[int]: its sender awaits a "int"  [cinema-handler]
        return ""

    @handler
    def note(self, msg: Note) -> None:  # E: Handler "Wrong.note" must take (self, message, ctx); it has no ctx parameter  [cinema-handler]
        pass


class Right(Actor):
    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> str:
        return ""

    @handler
    async def count(self, msg: Count, ctx: Context[Self]) -> bool:  # a subtype of the reply
        return True

    @handler
    def note(self, msg: Note, *rest: Any) -> None:  # *args takes ctx, as at run time
        pass

    @handler
    def never(self, msg: int, ctx: Context[Self]) -> None:
        raise ValueError


class Mixed(Actor):
    @handler
    def both(self, msg: Count | Note, ctx: Context[Self]) -> int:  # a Message[None] takes any
        return 1


class Split(Actor):
    @handler
    def greet_or_count(self, msg: Greet | Count, ctx: Context[Self]) -> str:  # E: Handler "Split.greet_or_count" returns "str", but "Count" is a Message[int]: its sender awaits a "int"  [cinema-handler]
        return ""


class Twice(Actor):
    @handler
    def first(self, msg: Greet, ctx: Context[Self]) -> str:
        return ""

    @handler
    def second(self, msg: Note | Greet, ctx: Context[Self]) -> None:  # E: Handlers "Twice.first" and "Twice.second" both handle "Greet": keep one  [cinema-handler]  # E: Handler "Twice.second" returns "None", but "Greet" is a Message[str]: its sender awaits a "str"  [cinema-handler]
        pass


class Child(Right):
    """A subclass may take over a base's type: its handler replaces the base's."""

    @handler
    def greet_again(self, msg: Greet, ctx: Context[Self]) -> str:
        return ""

    @handler
    def number(self, msg: int, ctx: Context[Self]) -> int:  # E: Handler "Child.number" replaces "Right.never" for "int" but returns "int", not "None"  [cinema-handler]
        return 1


class Unusable(Actor):
    @handler
    def literal(self, msg: Literal["stop"], ctx: Context[Self]) -> None:  # E: The message annotation of handler "Unusable.literal" must be a class or a union of classes, not "Literal['stop']"  [cinema-handler]
        pass

    @handler
    def user(self, msg: UserId, ctx: Context[Self]) -> None:  # E: The message annotation of handler "Unusable.user" must be a class or a union of classes, not "UserId"  [cinema-handler]
        pass

    @handler
    def anything(self, msg: Any, ctx: Context[Self]) -> None:  # E: The message annotation of handler "Unusable.anything" must be a class or a union of classes, not "Any" (annotate object to take every message)  [cinema-handler]
        pass

    @handler
    def generic(self, msg: T, ctx: Context[Self]) -> T:  # E: The message annotation of handler "Unusable.generic" must be a class or a union of classes, not "T"  [cinema-handler]
        return msg

    @handler
    def alone(self) -> None:  # E: Handler "Unusable.alone" must take (self, message, ctx); it takes no message parameter  [cinema-handler]
        pass


class Lax(Actor):
    @handler
    def untyped(self, msg, ctx):  # E: Handler "Lax.untyped" has no type annotation on its message parameter: Cinema dispatches by that annotation  [cinema-handler]
        pass
