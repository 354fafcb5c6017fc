"""The plugin under the mypy daemon (dmypy), which re-analyzes edited modules in place."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.mypy_plugin.conftest import Mypy

SOURCES = Path(__file__).parent / "cases" / "incremental"
FAREWELL = 'Actor "Greeter" has no handler for message type "Farewell"  [cinema-unhandled]'
GREET = 'Actor "Greeter" has no handler for message type "Greet"  [cinema-unhandled]'


class Daemon:
    """Drives one dmypy daemon through its client, in a subprocess."""

    def __init__(self, mypy: Mypy, workdir: Path) -> None:
        self.status_file = workdir / "dmypy.json"
        self.workdir = workdir
        self.flags = ["--config-file", str(mypy.config), "--cache-dir", str(workdir / "cache")]
        # The daemon imports the plugin: the one from this checkout.
        path = [str(mypy.core_src), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mypy.dmypy", "--status-file", str(self.status_file)]
        return subprocess.run(
            [*command, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def check(self, *files: Path) -> list[tuple[int, str]]:
        """Run a check (starting the daemon the first time); errors as (line, text)."""
        done = self.client("run", "--timeout", "120", "--", *self.flags, *map(str, files))
        assert done.returncode in (0, 1), done.stdout + done.stderr
        errors = []
        for line in done.stdout.splitlines():
            path, _, rest = line.partition(": error: ")
            if rest:
                errors.append((int(path.rsplit(":", 1)[1]), rest))
        return sorted(errors)

    def stop(self) -> None:
        if not self.status_file.exists():
            return
        pid = json.loads(self.status_file.read_text())["pid"]
        if self.client("stop").returncode != 0 and self.status_file.exists():
            # The daemon did not answer: end it (and only it) by its process id.
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemon(mypy: Mypy, tmp_path: Path) -> Iterator[Daemon]:
    # The daemon builds everything in memory at start (it does not read the cache).
    running = Daemon(mypy, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_daemon_follows_edits(daemon: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SOURCES, src)
    actors, caller = src / "actors.py", src / "caller.py"

    assert daemon.check(actors, caller) == [(10, FAREWELL)]

    # The edited module is analyzed again in the running daemon and merged into the old tree.
    edit(actors, "    def farewell(", "    @handler\n    def farewell(")
    assert daemon.check(actors, caller) == []

    edit(actors, "    @handler\n    def greet(", "    def greet(")
    assert daemon.check(actors, caller) == [(9, GREET)]

    edit(caller, "    addr.do_send(Greet())\n", "")
    assert daemon.check(actors, caller) == []
