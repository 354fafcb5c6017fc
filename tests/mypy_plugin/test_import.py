"""The plugin is for mypy only: importing cinema must not import it (nor mypy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CORE_SRC = Path(__file__).parents[2] / "packages" / "cinema-core" / "src"


def test_cinema_does_not_import_the_plugin() -> None:
    code = (
        "import sys, cinema\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mypy' or m == 'cinema.mypy'))"
    )
    path = [str(CORE_SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"


def test_the_plugin_entry_point_gives_a_mypy_plugin() -> None:
    from mypy.plugin import Plugin

    from cinema.mypy import plugin

    assert issubclass(plugin("2.4.1"), Plugin)
