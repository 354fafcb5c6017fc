"""Journals are plugins: found by URL scheme through the ``cinema_journals`` hook, like
transports; a third party's is used exactly as the shipped ones."""

from __future__ import annotations

import uuid
from typing import ClassVar

import pytest

from cinema import PluginLoadError, PluginNotFound, PluginRegistry, load_plugins
from cinema.abc import hookimpl
from cinema.persistence import open_journal
from cinema.persistence.abc import JournalPlugin, JournalStore
from cinema.persistence.testing import JournalSpec, TckEvent, TckPlugin, install_tck_serializer

pytestmark = pytest.mark.anyio


class Shelf(JournalPlugin):
    """A third party's scheme, ``shelf://``, backed by the memory store."""

    scheme: ClassVar[str] = "shelf"
    opened: ClassVar[list[str]] = []
    stores: ClassVar[dict[str, JournalStore]] = {}

    async def open(self, url: str) -> JournalStore:
        from cinema.persistence._memory import MemoryStore  # a test may reach inside

        self.opened.append(url)
        return self.stores.setdefault(url, MemoryStore())


class ShelfPlugin:
    @hookimpl
    def cinema_journals(self) -> list[object]:
        return [Shelf()]


class NotAJournal:
    scheme = "bogus"


class BogusPlugin:
    @hookimpl
    def cinema_journals(self) -> list[object]:
        return [NotAJournal()]


def test_the_shipped_journals_are_installed_plugins() -> None:
    assert {"memory", "sqlite", "postgresql"} <= set(load_plugins().journals)


async def test_a_plugin_registered_by_hand_serves_its_scheme() -> None:
    install_tck_serializer()
    registry = PluginRegistry()
    registry.register(ShelfPlugin(), name="shelf")
    registry.register(TckPlugin(), name="cinema-tck")  # a serializer too: the kit's
    url = f"shelf://{uuid.uuid4().hex}"
    async with open_journal(url, plugins=registry) as journal:
        await journal.append("p", 1, [TckEvent("a")])
        assert [e.event async for e in journal.events_by_persistence_id("p")] == [TckEvent("a")]
    assert Shelf.opened[-1] == url
    with pytest.raises(PluginNotFound, match="no Cinema journal for scheme 'sqlite'"):
        async with open_journal("sqlite:///x.db", plugins=registry):
            pass


async def test_a_plugin_returning_something_else_is_refused_by_name() -> None:
    registry = PluginRegistry()
    registry.register(BogusPlugin(), name="bogus")
    with pytest.raises(PluginLoadError, match=r"not a cinema\.persistence\.abc\.JournalPlugin"):
        async with open_journal("bogus://x", plugins=registry):
            pass


async def test_a_missing_scheme_says_what_to_install() -> None:
    with pytest.raises(PluginNotFound, match=r"pip install cinema-persistence\[postgresql\]"):
        async with open_journal("postgresql://x", plugins=PluginRegistry()):
            pass


class TestShelfJournalWithTheKit(JournalSpec):
    """The kit runs on a third party's journal through its URL."""

    def journal_url(self) -> str:
        registry = load_plugins()
        if "shelf" not in registry.journals:
            registry.register(ShelfPlugin(), name="shelf")
        return "shelf://kit"
