"""The code in the README's cluster section works as shown.

Same rules as ``tests/examples/test_readme.py`` (whose helpers this reuses): a Python block
starting with ``# example: <title>`` is a complete program, run on both anyio backends, that must
print every ``# prints:`` line and pass mypy and ruff; other blocks must compile.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.examples.test_readme import (  # noqa: E402
    _BLOCK,
    RUN_LINE,
    Block,
    check_program,
    section_text,
)

BLOCKS = [Block("cluster", m.group(1)) for m in _BLOCK.finditer(section_text("cluster"))]
PROGRAMS = [block for block in BLOCKS if block.title is not None]
FRAGMENTS = [block for block in BLOCKS if block.title is None]


def test_the_section_has_programs() -> None:
    assert len(PROGRAMS) >= 2
    for block in PROGRAMS:
        assert block.code.rstrip().endswith(RUN_LINE), block.title
        assert block.expected()[0], block.title


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: block.slug)
def test_program_runs(block: Block, backend: str, tmp_path: Path) -> None:
    check_program(block, backend, tmp_path)


def test_fragments_compile() -> None:
    for block in FRAGMENTS:
        compile(block.code, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_programs_pass_mypy_and_ruff(tmp_path: Path) -> None:
    paths = []
    for block in PROGRAMS:
        path = tmp_path / f"readme_cluster_{block.slug}.py"
        path.write_text(block.code, encoding="utf-8")
        paths.append(str(path))
    config = str(ROOT / "pyproject.toml")
    commands = [
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            config,
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "readme-cluster"),
            *paths,
        ],
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", config, *paths],
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "--no-cache",
            "--config",
            config,
            *paths,
        ],
    ]
    for command in commands:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
