"""Shared fixtures: every async test runs on both anyio backends.

The rest comes from cinema-core's pytest plugin (``cinema.testing``: ``actor_system``,
``probe``, ``virtual_clock``, ``loopback_port``) and its helpers (``wait_stopped``,
``eventually``, ``free_port``), which the tests import from ``cinema.testing``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def wait_stopped() -> object:
    """``cinema.testing.wait_stopped``, for tests that still take it as a fixture (new tests
    import it from ``cinema.testing``)."""
    from cinema.testing import wait_stopped

    return wait_stopped
