"""Fixtures for cinema-cluster tests: every async test also runs on uvloop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend  # noqa: E402


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    """asyncio, trio, and asyncio on uvloop's event loop (tests/backends.py)."""
    return network_backend(request)
