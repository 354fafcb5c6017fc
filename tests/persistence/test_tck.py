"""The persistence test kit (cinema.persistence.testing) on the three shipped journals."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinema.persistence.testing import JournalSpec, PerfSpec, SnapshotStoreSpec


class TestMemoryJournal(JournalSpec, SnapshotStoreSpec, PerfSpec):
    perf_events = 2_000

    def journal_url(self) -> str:
        return "memory://tck"


class TestSqliteJournal(JournalSpec, SnapshotStoreSpec, PerfSpec):
    perf_events = 1_000

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path}/tck.db?synchronous=normal"

    def journal_url(self) -> str:
        return self.url


class TestPostgresJournal(JournalSpec, SnapshotStoreSpec, PerfSpec):
    perf_events = 1_000

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def journal_url(self) -> str:
        return self.url
