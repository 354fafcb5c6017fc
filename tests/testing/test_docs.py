"""The tutorial's programs (docs/tutorial.md) run as shown, on both backends, and print exactly
the lines their ``# prints:`` comments announce (a trailing parenthesis is commentary)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cinema.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
PROGRAMS = [
    block
    for block in re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), re.DOTALL)
    if block.rstrip().endswith("anyio.run(main)")
]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("number", range(len(PROGRAMS)), ids=lambda n: f"step{n + 1}")
def test_tutorial_program_runs(number: int, backend: str, tmp_path: Path) -> None:
    code = PROGRAMS[number]
    for fixed in ("7101", "7102"):  # the cluster step's ports: free ones here
        code = code.replace(fixed, str(free_port()))
    code = code.rstrip().removesuffix("anyio.run(main)") + f"anyio.run(main, backend={backend!r})\n"
    script = tmp_path / "step.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = [
        re.sub(r"\s*\(.*\)$", "", line.split("prints:", 1)[1].strip())
        for line in code.splitlines()
        if "# " in line and "prints:" in line
    ]
    assert expected, "the program announces its output"
    assert done.stdout.splitlines() == expected


def test_the_tutorial_has_its_steps() -> None:
    assert len(PROGRAMS) == 4
