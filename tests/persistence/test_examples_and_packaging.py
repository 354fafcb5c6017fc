"""The persistence examples run as documented; the wheel ships only cinema/persistence."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_bank_account_comes_back_with_its_balance(backend: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bank.db"
    args = ["examples/bank_account.py", url] + (["trio"] if backend == "trio" else [])
    lines = _run(*args)
    assert lines == [
        "account-alice recovered: balance 0",
        "deposit 100 -> 100",
        "withdraw 30 -> 70",
        "withdraw 1000 refused: balance 70 < 1000",
        "deposit -5 crashed the account: a deposit of -5: this instance gives up",
        "account-alice recovered: balance 70",
        "balance after the restart -> 70",
        "deposit 5 -> 75",
    ]
    # A second run of the program: the balance came through the process exit too.
    assert _run(*args)[:2] == ["account-alice recovered: balance 75", "deposit 100 -> 175"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_counter_command_line(backend: str, tmp_path: Path) -> None:
    journal = ["--journal", f"sqlite:///{tmp_path}/c.db", "--backend", backend]
    assert _run("examples/persistent_counter.py", *journal, "add", "3") == ["1", "2", "3"]
    assert _run("examples/persistent_counter.py", *journal, "get") == ["3"]


def test_the_wheel_ships_only_its_subpackage_and_entry_points(tmp_path: Path) -> None:
    from tests.test_layout import build_wheel

    wheel = build_wheel(ROOT / "packages" / "cinema-persistence", tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "cinema/__init__.py" not in names
    assert {
        "cinema/persistence/__init__.py",
        "cinema/persistence/py.typed",
        "cinema/persistence/testing.py",
        "cinema/persistence/abc.py",
    } <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "cinema-persistence-sqlite = cinema.persistence._sqlite" in text
    metadata = next(n for n in names if n.endswith("METADATA"))
    meta = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: postgresql" in meta


def test_every_public_name_exists() -> None:
    import cinema.persistence

    for name in cinema.persistence.__all__:
        assert getattr(cinema.persistence, name) is not None
    assert cinema.persistence.PersistentActor.__module__ == "cinema.persistence"
