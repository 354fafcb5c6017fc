"""The README's observability section: its example runs and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- section:observability -->", "<!-- /section:observability -->"
    return text[text.index(start) + len(start) : text.index(end)]


def test_the_statistics_example_prints_what_it_announces() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", _section(), re.DOTALL | re.MULTILINE)
    (program,) = [b for b in blocks if b.startswith("# example: statistics")]
    expected = re.findall(r"# prints: (.*)$", program, re.MULTILINE)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected
    for block in blocks:
        compile(block, "README.md", "exec")
