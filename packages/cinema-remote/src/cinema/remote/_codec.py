"""Payloads: encoding and decoding a message with its serializer, and naming its type.

The one place that knows protobuf's fast path (the built-in serializer, used for most messages:
its classes encode, decode and name themselves without the generic lookups).
"""

from __future__ import annotations

from typing import TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from cinema.abc import Serializer

from ._errors import PayloadDecodeError
from ._protobuf import type_name_of
from ._serializers import PROTOBUF

__all__ = ["decode_payload", "encode_payload", "payload_type_name"]

T = TypeVar("T")


def encode_payload(serializer: Serializer, message: object) -> bytes:
    """``message`` encoded by ``serializer``."""
    if serializer is PROTOBUF and isinstance(message, ProtoMessage):
        return message.SerializeToString()
    return serializer.encode(message)


def decode_payload(serializer: Serializer, data: bytes, cls: type[T]) -> T:
    """``data`` decoded by ``serializer`` as a ``cls``.

    :raises PayloadDecodeError: ``data`` is not a valid encoding of ``cls``, or the serializer
        cannot decode ``cls`` at all.
    """
    if serializer is PROTOBUF and issubclass(cls, ProtoMessage):
        try:
            return cast(T, cls.FromString(data))
        except DecodeError as exc:
            raise PayloadDecodeError(
                f"protobuf cannot decode {len(data)} bytes as {cls.__qualname__}: {exc}"
            ) from exc
    try:
        return serializer.decode(data, cls)
    except (ValueError, TypeError) as exc:
        raise PayloadDecodeError(
            f"{serializer.name} cannot decode {len(data)} bytes as {cls.__qualname__}: {exc}"
        ) from exc


def payload_type_name(serializer: Serializer, cls: type) -> str:
    """The wire name ``serializer`` gives ``cls`` (cached for protobuf classes)."""
    if serializer is PROTOBUF:
        return type_name_of(cls)
    return serializer.type_name(cls)
