"""Fixtures for cinema-remote tests: a server with test actors on an ephemeral loopback port."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The generated test messages and the examples are imported by their repository paths
# (``tests.remote.protos``, ``examples.calculator``), as mypy resolves them.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend  # noqa: E402


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    """asyncio, trio, and asyncio on uvloop's event loop (tests/backends.py)."""
    return network_backend(request)
