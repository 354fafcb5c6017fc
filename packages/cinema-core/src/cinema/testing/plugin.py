"""The pytest plugin of cinema-core (entry point ``pytest11``, name ``cinema``).

The fixtures are documented in :mod:`cinema.testing`. Each takes ``anyio_backend``, so that
anyio's pytest plugin runs it on the test's backend (and the project's own ``anyio_backend``
fixtures choose it); the async ones must be used from tests anyio runs
(``@pytest.mark.anyio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .. import ActorSystem
from . import Clock, Probe, current_clock, free_port


@pytest.fixture
async def actor_system(anyio_backend: object) -> AsyncIterator[ActorSystem]:
    """A running :class:`cinema.ActorSystem`; leaving the test stops every actor in it."""
    async with ActorSystem() as system:
        yield system


@pytest.fixture
async def probe(actor_system: ActorSystem) -> Probe:
    """A :class:`cinema.testing.Probe` spawned in :func:`actor_system`."""
    return Probe(actor_system)


@pytest.fixture
async def virtual_clock(anyio_backend: object) -> Clock:
    """The virtual clock of the running test: ``virtual_clock.advance(3600)``.

    The test's ``anyio_backend`` fixture must return ``cinema.testing.virtual_time(...)``.
    """
    return current_clock()


@pytest.fixture
def loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (never the same twice in a session)."""
    return free_port()
