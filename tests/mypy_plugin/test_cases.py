"""Each case file yields exactly the errors it declares; files without declarations are clean."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.mypy_plugin.conftest import Mypy, MypyResult

CASES = sorted((Path(__file__).parent / "cases").glob("case_*.py"))


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_case(case: Path, mypy: Mypy, case_result: MypyResult) -> None:
    assert case_result.messages(case) == mypy.expected(case)


def test_every_case_is_checked(case_result: MypyResult) -> None:
    # Guards against a run that silently skipped files (e.g. a module name clash).
    assert f"checked {len(CASES)} source files" in case_result.stdout


def test_cases_expect_errors_from_the_plugin(mypy: Mypy) -> None:
    # The cases must exercise the plugin: at least one expected error per checked method.
    expected = [text for case in CASES for _, kind, text in mypy.expected(case) if kind == "error"]
    codes = ("[cinema-unhandled]", "[cinema-handler]")
    assert all(text.endswith(codes) for text in expected)
    for needle in (".do_send(", ".send(", "run_later", "run_interval", "watch(", "add_stream("):
        lines = [
            line
            for case in CASES
            for line in case.read_text().splitlines()
            if needle in line and "# E:" in line
        ]
        assert lines, needle
    # ... and each of the handler definition checks.
    for needle in ("returns", "no ctx", "no message parameter", "both handle", "must be a class"):
        assert any(needle in text and "[cinema-handler]" in text for text in expected), needle
