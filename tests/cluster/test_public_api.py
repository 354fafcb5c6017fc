"""Every public name of cinema.cluster exists, is documented and reports cinema.cluster."""

from __future__ import annotations

import cinema.cluster


def test_all_attributes_exist_and_are_sorted() -> None:
    names = cinema.cluster.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(cinema.cluster, name), name


def test_public_classes_are_documented_under_the_public_module() -> None:
    for name in cinema.cluster.__all__:
        obj = getattr(cinema.cluster, name)
        if isinstance(obj, type):
            assert obj.__module__ == "cinema.cluster", name
            assert obj.__doc__, name


def test_the_memory_transport_is_a_cinema_plugin() -> None:
    from cinema import PluginRegistry
    from cinema.cluster import MemoryTransport, _memory

    registry = PluginRegistry()
    registry.register(_memory, "cinema-cluster-memory")
    assert isinstance(registry.transport("mem"), MemoryTransport)


def test_the_memory_transport_is_found_through_its_entry_point() -> None:
    from cinema._plugins import load_plugins
    from cinema.cluster import MemoryTransport

    assert isinstance(load_plugins().transport("mem"), MemoryTransport)
