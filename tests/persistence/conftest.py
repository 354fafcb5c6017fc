"""Fixtures for cinema-persistence tests: journal URLs for SQLite and a throwaway PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.persistence.postgres_server import NoPostgres, postgres_server  # noqa: E402


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the whole session. The PostgreSQL tests fail (never
    skip) when none can start: CI installs the server (``.ci/run``)."""
    try:
        server = postgres_server(fsync=False)
        url = server.__enter__()
    except NoPostgres as exc:
        pytest.fail(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
