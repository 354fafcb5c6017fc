"""Dataclass messages on the wire: the msgspec serializer (MessagePack), plugin ``"msgspec"``.

A dataclass ``Message[R]`` travels as it is: its fields as a MessagePack map, its reply as the
MessagePack value of ``R``. Decoding is always typed by a class the receiver names (the message
class its actor handles, the ``R`` the caller expects), never by anything the peer sends: msgspec
builds only instances of that class and of its annotated field types, and checks every value
against the annotations (no pickle, no import of a name from the wire). How many bytes it reads
is bounded by the frame it came in (``max_frame_size``).

Supported: dataclasses (also nested, with defaults), ``msgspec.Struct`` classes, ``str``,
``int``, ``float``, ``bool``, ``bytes``, ``None``, lists, tuples (also ``tuple[int, str]``),
sets, dicts, enums (by value), ``datetime``/``date``/``time``/``timedelta``, ``UUID``,
``Decimal``, unions and ``Optional`` of those.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar, Final, TypeVar, final

import msgspec
from google.protobuf.message import Message as ProtoMessage

from cinema.abc import Serializer, hookimpl

__all__ = ["WIRE_NAME_ATTRIBUTE", "MsgspecSerializer", "cinema_serializers"]

T = TypeVar("T")

#: A class attribute that fixes a class's wire name (``__wire_name__ = "shop.AddItem"``), so
#: that the class may be renamed or moved without breaking peers or stored data.
WIRE_NAME_ATTRIBUTE: Final = "__wire_name__"

# Value types (not message classes) that replies and fields may be: always handled.
_VALUE_TYPES: Final[frozenset[type]] = frozenset(
    {
        str,
        int,
        float,
        bool,
        bytes,
        bytearray,
        list,
        tuple,
        dict,
        set,
        frozenset,
        type(None),
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
        decimal.Decimal,
    }
)


def _candidate(cls: type) -> bool:
    """Whether ``cls`` is a kind of class msgspec serializes by its annotations (not by
    guessing: an arbitrary class is refused even where msgspec would accept it)."""
    return (
        dataclasses.is_dataclass(cls)
        or issubclass(cls, (msgspec.Struct, enum.Enum))
        or cls in _VALUE_TYPES
    )


@final
class MsgspecSerializer(Serializer):
    """Dataclasses (and the values in their fields) as MessagePack, with msgspec.

    A class's wire name is its ``__qualname__`` (``"AddItem"``), or the string in its
    ``__wire_name__`` class attribute if it defines one (recommended for classes whose name or
    module may change, and for classes of the same name that one actor handles). The name does
    not include the module, so that a class defined in a script (``__main__``) and the same
    class imported elsewhere agree.

    :meth:`decode` also takes a type expression that is not a class (``list[Item]``,
    ``int | None``): replies are decoded as the ``R`` of their ``Message[R]``.
    """

    name: ClassVar[str] = "msgspec"

    __slots__ = ("_decoders", "_encoder", "_handled", "_names")

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        # Keyed by type expressions of this process's code (never by a peer's string).
        self._decoders: dict[object, msgspec.msgpack.Decoder[Any]] = {}
        self._handled: dict[type, bool] = {}
        self._names: dict[type, str] = {}

    def handles(self, cls: type) -> bool:
        found = self._handled.get(cls)
        if found is None:
            found = (
                isinstance(cls, type)
                and not issubclass(cls, ProtoMessage)
                and _candidate(cls)
                and self._decoder_or_none(cls) is not None
            )
            self._handled[cls] = found
        return found

    def type_name(self, cls: type) -> str:
        name = self._names.get(cls)
        if name is not None:
            return name
        if not self.handles(cls):
            raise TypeError(f"{cls!r} is not a class the msgspec serializer handles")
        fixed = vars(cls).get(WIRE_NAME_ATTRIBUTE)
        name = fixed if isinstance(fixed, str) and fixed else cls.__qualname__
        self._names[cls] = name
        return name

    def encode(self, message: object) -> bytes:
        try:
            return self._encoder.encode(message)
        except (TypeError, OverflowError) as exc:
            raise TypeError(f"msgspec cannot encode {type(message).__qualname__}: {exc}") from exc

    def decode(self, data: bytes, cls: type[T]) -> T:
        result: T = self.decode_as(data, cls)
        return result

    def decode_as(self, data: bytes, tp: object) -> Any:
        """Parse ``data`` as a value of the type expression ``tp`` (a class, or e.g.
        ``list[Item]``).

        :raises ValueError: ``data`` is not a valid encoding of a ``tp`` (the message says which
            field is wrong).
        :raises TypeError: msgspec cannot decode ``tp`` at all (e.g. a field of an unsupported
            type).
        """
        decoder = self._decoders.get(tp)
        if decoder is None:
            decoder = self._decoder(tp)
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError included
            raise ValueError(str(exc)) from exc

    def _decoder(self, tp: object) -> msgspec.msgpack.Decoder[Any]:
        if isinstance(tp, type) and issubclass(tp, ProtoMessage):
            raise TypeError(f"the msgspec serializer does not decode {tp!r}")
        # (typing.Any is a class on Python 3.11; it means "any MessagePack value".)
        if tp is not Any and isinstance(tp, type) and not _candidate(tp):
            raise TypeError(
                f"{tp.__qualname__} is not a dataclass, msgspec.Struct, enum or value type"
            )
        try:
            decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(tp)
        except Exception as exc:  # unsupported types, unresolvable annotations
            raise TypeError(f"msgspec cannot decode {tp!r}: {exc}") from exc
        self._decoders[tp] = decoder
        return decoder

    def _decoder_or_none(self, tp: object) -> msgspec.msgpack.Decoder[Any] | None:
        try:
            return self._decoder(tp)
        except TypeError:
            return None

    def __repr__(self) -> str:
        return "MsgspecSerializer()"


MsgspecSerializer.__module__ = "cinema.remote"


@hookimpl
def cinema_serializers() -> Iterable[Serializer]:
    """Plugin hook: Cinema's msgspec (dataclass) serializer."""
    return [MsgspecSerializer()]
