"""kill -9 at any moment: no partial atomic write, and every acknowledged event is there.

The writers run in subprocesses (the persistent counter example and ``crash_writer.py``) and are
killed with SIGKILL after a varying number of acknowledgements; the journal is then read back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cinema.persistence import open_journal, register_types
from tests.persistence.protos.persistence_test_pb2 import Note

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
COUNTER = ROOT / "examples" / "persistent_counter.py"
WRITER = Path(__file__).resolve().parent / "crash_writer.py"

#: After how many acknowledgements each run is killed (varied, so that the kill lands in
#: different phases of a write).
KILL_AFTER = [1, 7, 23]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # synchronous=normal: durable across a process kill (not a power loss), like the docs say.
        return f"sqlite:///{tmp_path}/crash.db?synchronous=normal"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the subprocesses are the subject; the reading side needs one backend


def _kill_after(args: list[str], acks: int) -> list[int]:
    """Start ``args``, SIGKILL it after ``acks`` printed lines; return every line it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    printed: list[int] = []
    try:
        for line in proc.stdout:
            printed.append(int(line))
            if len(printed) >= acks:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        # Read through the file objects: lines they buffered ahead are acknowledged ones too.
        rest = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr is not None else ""
        proc.wait(timeout=30)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    # Lines already in the pipe when the kill landed were acknowledged too.
    printed += [int(line) for line in rest.split()]
    assert len(printed) >= acks, err
    assert proc.returncode == -signal.SIGKILL
    return printed


def _counter(url: str, *args: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-W", "error", str(COUNTER), "--journal", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [int(line) for line in done.stdout.split()]


async def test_the_counter_keeps_every_acknowledged_total(url: str) -> None:
    # The PostgreSQL database lives for the whole session: start from whatever total it has.
    (base,) = _counter(url, "get")
    for acks in KILL_AFTER:
        printed = _kill_after([str(COUNTER), "--journal", url, "add", "100000"], acks)
        last = printed[-1]
        assert printed == list(range(printed[0], last + 1))  # one line per acknowledged add
        (total,) = _counter(url, "get")
        assert total in (last, last + 1)
    (total,) = _counter(url, "get")
    assert total > base
    assert _counter(url, "add", "2") == [total + 1, total + 2]


async def test_a_kill_mid_batch_leaves_no_partial_batch(url: str) -> None:
    register_types(Note)  # the reading side decodes the writer's events
    size = 200
    pid = f"crash-{uuid.uuid4().hex}"
    acknowledged = 0
    for acks in KILL_AFTER:
        printed = _kill_after([str(WRITER), url, pid, str(size)], acks)
        acknowledged = printed[-1]
        async with open_journal(url) as journal:
            highest = await journal.highest_sequence_nr(pid)
            numbers = [
                int(e.event.text.split(":")[0]) async for e in journal.events_by_persistence_id(pid)
            ]
        assert highest % size == 0  # whole batches only
        assert highest in (acknowledged, acknowledged + size)
        assert numbers == list(range(1, highest + 1))
    assert acknowledged >= size * sum(KILL_AFTER) // len(KILL_AFTER)
