"""The plugin's definition errors (cinema-handler) and the runtime's HandlerDefinitionError
agree: on the classes of cases/case_handlers.py, the runtime refuses exactly the actor classes
the plugin reports a definition error for (reply-type errors are the plugin's alone: the
runtime cannot see return annotations' meaning)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cinema import Actor, HandlerDefinitionError
from cinema._handler import class_info

if TYPE_CHECKING:
    from tests.mypy_plugin.conftest import MypyResult

CASE = Path(__file__).parent / "cases" / "case_handlers.py"
# The plugin's messages that correspond to a runtime definition error.
_DEFINITION = re.compile(r"must take \(self|both handle|must be a class|no type annotation")
_CLASS = re.compile(r'[Hh]andlers? "(?P<cls>\w+)\.')


def _actor_classes() -> dict[str, type[Actor]]:
    spec = importlib.util.spec_from_file_location("case_handlers_runtime", CASE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, Actor) and value is not Actor
    }


def test_runtime_refuses_what_the_plugin_reports(case_result: MypyResult) -> None:
    reported = set()
    for _, kind, text in case_result.messages(CASE):
        if kind == "error" and _DEFINITION.search(text):
            match = _CLASS.search(text)
            assert match, text
            reported.add(match["cls"])
    classes = _actor_classes()
    assert reported
    assert reported <= classes.keys()
    refused = set()
    for name, cls in classes.items():
        try:
            class_info(cls)
        except HandlerDefinitionError:
            refused.add(name)
    assert refused == reported


@pytest.mark.parametrize("name", ["Mixed", "Split", "Child"])
def test_reply_type_errors_are_the_plugins_alone(name: str) -> None:
    class_info(_actor_classes()[name])
