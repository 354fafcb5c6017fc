"""Machinery shared by the mypy-plugin tests.

A mypy run is slow (seconds), so one session-wide run checks every case file under
``cases/`` and each test reads its own file's part of the output. Later runs start from a copy
of that run's cache, so the standard library, anyio and cinema are not checked again.

Case files state what mypy must report on a line with trailing comments, as mypy's own test
data does: ``# E: <message>  [<code>]`` for an error, ``# N: <message>`` for a note; a line
may carry several. A file without such comments must come out clean.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api

HERE = Path(__file__).parent
CASES = HERE / "cases"
CORE_SRC = HERE.parents[1] / "packages" / "cinema-core" / "src"
# cinema.remote and cinema.cluster, for the remote-address cases.
OTHER_SRC = [
    HERE.parents[1] / "packages" / name / "src" for name in ("cinema-remote", "cinema-cluster")
]

_OUTPUT_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")
_EXPECTATION = re.compile(r"# (?P<kind>[EN]): (?P<text>.*?)(?=\s+# [EN]: |\s*$)")
_KINDS = {"E": "error", "N": "note"}

# mypy's configuration for every run: the project's strictness, the plugin, and the core
# sources from this checkout (not whatever `cinema` happens to be installed).
CONFIG = f"""\
[mypy]
python_version = 3.11
strict = True
warn_unreachable = True
show_absolute_path = True
plugins = cinema.mypy
mypy_path = {",".join(map(str, [CORE_SRC, *OTHER_SRC]))}
"""

Message = tuple[int, str, str]  # (line, "error" | "note", text)


@dataclass(frozen=True)
class MypyResult:
    """What one mypy run printed, and its exit status."""

    stdout: str
    stderr: str
    status: int

    def messages(self, path: Path) -> list[Message]:
        """The errors and notes reported for ``path``, sorted by line."""
        found: list[Message] = []
        for raw in self.stdout.splitlines():
            match = _OUTPUT_LINE.match(raw)
            if match and Path(match["path"]).resolve() == path.resolve():
                found.append((int(match["line"]), match["kind"], match["text"]))
        return sorted(found)

    def check_no_crash(self, *, verbose: bool = False) -> None:
        """Fail unless mypy finished normally: status 0 or 1, and nothing on stderr (which
        holds only the log when ``verbose``)."""
        assert self.status in (0, 1), self.stdout + self.stderr
        if verbose:
            assert "Traceback" not in self.stderr, self.stderr
        else:
            assert self.stderr == "", self.stderr


@dataclass(frozen=True)
class Mypy:
    """Runs mypy with the plugin, in this process, on a given cache directory."""

    config: Path
    warm_cache: Path
    core_src: Path = CORE_SRC

    def run(self, files: Iterable[Path], cache_dir: Path, *args: str) -> MypyResult:
        """Check ``files`` with ``cache_dir`` as the incremental cache."""
        argv = ["--config-file", str(self.config), "--cache-dir", str(cache_dir), *args]
        stdout, stderr, status = api.run([*argv, *map(str, files)])
        return MypyResult(stdout, stderr, status)

    @staticmethod
    def expected(path: Path) -> list[Message]:
        """The errors and notes that the case file ``path`` declares in trailing comments."""
        found: list[Message] = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in _EXPECTATION.finditer(line):
                found.append((number, _KINDS[match["kind"]], match["text"]))
        return sorted(found)

    def seed_cache(self, target: Path) -> Path:
        """A private copy of the session's cache at ``target``: warm for the library modules."""
        shutil.copytree(self.warm_cache, target)
        return target


def case_files() -> Sequence[Path]:
    """The case files the session-wide run checks (test modules list them the same way)."""
    return sorted(CASES.glob("case_*.py"))


@pytest.fixture(scope="session")
def mypy_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Mypy, MypyResult]:
    """The session's mypy runner and its one run over every case file."""
    root = tmp_path_factory.mktemp("mypy")
    config = root / "mypy.ini"
    config.write_text(CONFIG)
    runner = Mypy(config, root / "cache")
    result = runner.run(case_files(), runner.warm_cache)
    result.check_no_crash()
    return runner, result


@pytest.fixture
def mypy(mypy_session: tuple[Mypy, MypyResult]) -> Mypy:
    """The mypy runner; its cache is warm once this fixture is available."""
    return mypy_session[0]


@pytest.fixture
def case_result(mypy_session: tuple[Mypy, MypyResult]) -> MypyResult:
    """The output of the session-wide run over all case files."""
    return mypy_session[1]
