"""The plugin's records survive mypy's incremental cache, which does not keep decorators.

Every run starts from the previous run's cache; each edit touches one file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.mypy_plugin.conftest import Mypy

SOURCES = Path(__file__).parent / "cases" / "incremental"
FAREWELL = 'Actor "Greeter" has no handler for message type "Farewell"  [cinema-unhandled]'
GREET = 'Actor "Greeter" has no handler for message type "Greet"  [cinema-unhandled]'


def copy_sources(target: Path) -> tuple[Path, Path]:
    target.mkdir()
    for source in SOURCES.glob("*.py"):
        shutil.copy(source, target / source.name)
    return target / "actors.py", target / "caller.py"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_handler_records_survive_the_cache(mypy: Mypy, tmp_path: Path) -> None:
    actors, caller = copy_sources(tmp_path / "src")
    cache = mypy.seed_cache(tmp_path / "cache")

    first = mypy.run([actors, caller], cache)
    first.check_no_crash()
    assert first.messages(caller) == [(10, "error", FAREWELL)]

    # Only the caller changes: actors.py, and the handlers recorded for Greeter, come from
    # the cache.
    caller.write_text(
        caller.read_text() + "    addr.do_send(Greet())\n    addr.do_send(Farewell())\n"
    )
    second = mypy.run([actors, caller], cache, "--verbose")
    second.check_no_crash(verbose=True)
    assert f"Parsing {caller}" in second.stderr
    assert f"Parsing {actors}" not in second.stderr
    assert second.messages(caller) == [(10, "error", FAREWELL), (12, "error", FAREWELL)]


def test_toggling_handler_rechecks_senders(mypy: Mypy, tmp_path: Path) -> None:
    actors, caller = copy_sources(tmp_path / "src")
    cache = mypy.seed_cache(tmp_path / "cache")
    mypy.run([actors, caller], cache).check_no_crash()

    # Adding @handler changes no signature, only the plugin's record: the caller, loaded from
    # the cache otherwise, must be checked again.
    edit(actors, "    def farewell(", "    @handler\n    def farewell(")
    second = mypy.run([actors, caller], cache, "--verbose")
    second.check_no_crash(verbose=True)
    assert f"Parsing {caller}" in second.stderr
    assert second.messages(caller) == []

    edit(actors, "    @handler\n    def greet(", "    def greet(")
    third = mypy.run([actors, caller], cache)
    third.check_no_crash()
    assert third.messages(caller) == [(9, "error", GREET)]
