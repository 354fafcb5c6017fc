"""The module the entry point names: Cinema calls its hook implementations."""

from __future__ import annotations

from collections.abc import Iterable

from cinema.abc import Transport, hookimpl

from ._transport import LoopTransport


@hookimpl
def cinema_transports() -> Iterable[Transport]:
    return [LoopTransport()]
