"""The code in the README's intro and core sections works as shown.

Python blocks whose first line is a ``# example: <title>`` comment are complete programs: each
is run as a subprocess on both anyio backends and must print every line announced by a
``# prints: <line>`` comment (standalone ``# prints:`` comment lines also fix the order). All of
them must pass mypy and ruff with the repository's configuration. Other Python blocks are
fragments; they must at least compile.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTIONS = ("intro", "core")
RUN_LINE = "anyio.run(main)"

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_PRINTS = re.compile(r"#\s*prints:\s?(.*)$")


@dataclass(frozen=True)
class Block:
    section: str
    code: str

    @property
    def title(self) -> str | None:
        first = self.code.split("\n", 1)[0]
        if first.startswith("# example:"):
            return first.removeprefix("# example:").strip()
        return None

    @property
    def slug(self) -> str:
        return re.sub(r"\W+", "_", self.title or "fragment").strip("_").lower()

    def expected(self) -> tuple[list[str], list[str]]:
        """All announced lines, and those on standalone comment lines (in order)."""
        every: list[str] = []
        ordered: list[str] = []
        for line in self.code.splitlines():
            match = _PRINTS.search(line)
            if match:
                every.append(match.group(1))
                if line.lstrip().startswith("#"):
                    ordered.append(match.group(1))
        return every, ordered


def section_text(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    assert text.count(start) == 1, f"README: one {start} marker"
    assert text.count(end) == 1, f"README: one {end} marker"
    return text[text.index(start) + len(start) : text.index(end)]


def blocks() -> list[Block]:
    return [
        Block(name, match.group(1))
        for name in SECTIONS
        for match in _BLOCK.finditer(section_text(name))
    ]


PROGRAMS = [block for block in blocks() if block.title is not None]
FRAGMENTS = [block for block in blocks() if block.title is None]


def test_readme_has_programs() -> None:
    titles = [block.title for block in PROGRAMS]
    assert len(set(titles)) == len(titles), f"duplicate example titles: {titles}"
    for needed in ("quick start", "CRUD"):
        assert needed in titles
    for block in PROGRAMS:
        assert block.code.rstrip().endswith(RUN_LINE), f"{block.title}: must end with {RUN_LINE}"
        assert block.expected()[0], f"{block.title}: announces no output (# prints: ...)"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: block.slug)
def test_readme_program_runs(block: Block, backend: str, tmp_path: Path) -> None:
    check_program(block, backend, tmp_path)


def check_program(block: Block, backend: str, tmp_path: Path) -> None:
    """Run a README program on ``backend``; it must print its ``# prints:`` lines in order."""
    code = block.code
    if backend != "asyncio":
        code = code.rstrip().removesuffix(RUN_LINE) + f"anyio.run(main, backend={backend!r})\n"
    script = tmp_path / f"{block.slug}.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    every, ordered = block.expected()
    missing = [line for line in every if line not in lines]
    assert not missing, f"missing output lines {missing}; the program printed:\n{done.stdout}"
    position = 0
    for line in ordered:
        assert line in lines[position:], f"{line!r} out of order in:\n{done.stdout}"
        position = lines.index(line, position) + 1


def test_readme_fragments_compile() -> None:
    for block in FRAGMENTS:
        compile(block.code, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def write_programs(directory: Path) -> list[str]:
    paths = []
    for block in PROGRAMS:
        path = directory / f"readme_{block.slug}.py"
        path.write_text(block.code, encoding="utf-8")
        paths.append(str(path))
    return paths


def check_types(paths: list[str], cache: str) -> None:
    """mypy --strict (the repository's configuration, with the plugin) passes on ``paths``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / cache),
            *paths,
        ],
        cwd=ROOT,  # the config's mypy_path is relative to the repository root
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_programs_type_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    check_types(write_programs(tmp_path), "readme")


def test_readme_programs_pass_ruff(tmp_path: Path) -> None:
    pytest.importorskip("ruff")
    paths = write_programs(tmp_path)
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *config, *paths],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _code_lines(text: str) -> list[str]:
    """Non-blank lines without comments and imports (indentation kept)."""
    lines = []
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if code and not code.startswith(("import ", "from ")):
            lines.append(code)
    return lines


@pytest.mark.parametrize(
    ("title", "example"),
    [("quick start", "examples/quickstart.py"), ("CRUD", "examples/crud/main.py")],
)
def test_readme_program_matches_example(title: str, example: str) -> None:
    """The definitions shown in the README are those of the example file (no drift)."""
    block = next(block for block in PROGRAMS if block.title == title)
    definitions = block.code.split("async def main", 1)[0]
    in_example = set(_code_lines((ROOT / example).read_text(encoding="utf-8")))
    drifted = [line for line in _code_lines(definitions) if line not in in_example]
    assert not drifted, f"README {title!r} lines not in {example}: {drifted}"
