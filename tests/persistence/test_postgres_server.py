"""The throwaway PostgreSQL of the tests: where its binaries come from, and that the pgserver
wheel's start a real server (the path a fresh machine with only Python and pip takes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import psycopg
import pytest

from tests.persistence.postgres_server import (
    BIN_ENV,
    NoPostgres,
    binaries,
    pgserver_binaries,
    postgres_server,
    system_binaries,
)

HAS_PGSERVER = importlib.util.find_spec("pgserver") is not None


def test_pgserver_is_installed_where_it_has_a_wheel() -> None:
    # hatch.toml installs it on 3.11 and 3.12; without it a fresh machine has no server.
    assert (sys.version_info < (3, 13)) == HAS_PGSERVER


@pytest.mark.skipif(not HAS_PGSERVER, reason="no pgserver wheel on this Python")
def test_the_pgserver_binaries_start_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BIN_ENV, "pgserver")
    bindir, source = binaries()
    assert source == "pgserver"
    assert bindir == pgserver_binaries()
    assert "pgserver" in bindir.parts
    with postgres_server(fsync=False) as url, psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory'), version()").fetchone()
        assert row is not None
        assert row[1].startswith("PostgreSQL ")
        # The server runs the wheel's binaries (or the copy made for the server's user).
        proc = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert proc is not None
        exe = Path(f"/proc/{proc[0]}/exe").resolve()
        assert exe.parts[-4:-2] == ("pgserver", "pginstall"), exe


@pytest.mark.skipif(HAS_PGSERVER, reason="pgserver is installed: the test above covers it")
def test_without_pgserver_the_system_binaries_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BIN_ENV, raising=False)
    bindir, source = binaries()
    assert (source, bindir) == ("system", system_binaries())
    monkeypatch.setenv(BIN_ENV, "pgserver")
    with pytest.raises(NoPostgres, match="no PostgreSQL server binaries"):
        binaries()


def test_a_bin_folder_without_initdb_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BIN_ENV, str(tmp_path))
    with pytest.raises(NoPostgres, match="not a folder holding initdb"):
        binaries()
