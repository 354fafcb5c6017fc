"""A stand-in for mypy-protobuf output (final classes deriving from protobuf's Message), for
case_remote.py."""

import typing

from google.protobuf import message

@typing.final
class Order(message.Message):
    item: str
    def __init__(self, *, item: str = ...) -> None: ...

@typing.final
class Receipt(message.Message):
    total: int
    def __init__(self, *, total: int = ...) -> None: ...

@typing.final
class History(message.Message):
    def __init__(self) -> None: ...

@typing.final
class Refund(message.Message):
    def __init__(self) -> None: ...
