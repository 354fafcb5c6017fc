"""Plugin discovery: entry points in the ``cinema`` group, typed registry, clear errors."""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys
import types
from collections.abc import Iterable, Iterator
from typing import ClassVar

import pytest

import cinema._plugins
from cinema import CinemaError, PluginLoadError, PluginNotFound, PluginRegistry
from cinema._plugins import load_plugins
from cinema.abc import Connection, Listener, Serializer, Transport, hookimpl


class FakeTransport(Transport):
    scheme: ClassVar[str] = "fake"

    async def connect(self, address: str, *, ssl_context: object = None) -> Connection:
        raise OSError("fake transports connect nowhere")

    async def listen(self, address: str, *, ssl_context: object = None) -> Listener:
        raise OSError("fake transports listen nowhere")


def make_plugin(
    name: str, transports: Iterable[object] = (), serializers: Iterable[object] = ()
) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def cinema_transports() -> list[object]:
        return list(transports)

    @hookimpl
    def cinema_serializers() -> list[object]:
        return list(serializers)

    module.cinema_transports = cinema_transports  # type: ignore[attr-defined]  # plugin module built at runtime
    module.cinema_serializers = cinema_serializers  # type: ignore[attr-defined]  # plugin module built at runtime
    return module


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """Each test that reloads sees its own registry; the process-wide one is restored after."""
    yield
    # Reset lazily: the next user loads the real entry points again.
    cinema._plugins._cached = None


def test_installed_plugins_are_found_through_entry_points() -> None:
    registry = load_plugins()
    assert registry.transport("tcp").scheme == "tcp"
    assert registry.transport("unix").scheme == "unix"
    assert registry.serializer("protobuf").name == "protobuf"
    assert {"cinema-remote-tcp", "cinema-remote-unix", "cinema-remote-protobuf"} <= set(
        registry.plugin_names
    )
    assert "tcp" in registry.transports
    assert "protobuf" in registry.serializers
    assert "tcp" in repr(registry)


def test_the_registry_is_cached_per_process(fresh_cache: None) -> None:
    assert load_plugins() is load_plugins()
    first = load_plugins()
    assert load_plugins(reload=True) is not first


def test_nothing_is_loaded_at_import_time() -> None:
    code = (
        "import sys, cinema, cinema._plugins as p\n"
        "assert p._cached is None, 'plugins loaded at import'\n"
        "assert 'cinema.remote' not in sys.modules, 'cinema.remote imported by cinema'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_transport_says_what_to_install() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginNotFound, match="pip install cinema-remote") as info:
        registry.transport("tcp")
    assert isinstance(info.value, CinemaError)
    assert isinstance(info.value, LookupError)
    with pytest.raises(PluginNotFound, match="'carrier-pigeon'"):
        load_plugins().transport("carrier-pigeon")
    with pytest.raises(PluginNotFound, match="'yaml'"):
        load_plugins().serializer("yaml")


def test_registering_a_plugin_by_hand() -> None:
    registry = PluginRegistry()
    registry.register(make_plugin("fake_plugin", transports=[FakeTransport()]), "fake-plugin")
    assert isinstance(registry.transport("fake"), FakeTransport)
    assert "fake-plugin" in registry.plugin_names


def test_a_plugin_returning_the_wrong_type_is_named() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginLoadError, match=r"'bad-plugin'.*not a cinema\.abc\.Transport"):
        registry.register(make_plugin("bad", transports=["not a transport"]), "bad-plugin")
    # The bad plugin was not kept.
    assert "bad-plugin" not in registry.plugin_names


def test_a_hook_with_a_typo_is_refused() -> None:
    module = types.ModuleType("typo")

    @hookimpl
    def cinema_transport() -> list[Transport]:  # missing "s": no such hook
        return []

    module.cinema_transport = cinema_transport  # type: ignore[attr-defined]  # plugin module built at runtime
    with pytest.raises(PluginLoadError, match="typo-plugin"):
        PluginRegistry().register(module, "typo-plugin")


def test_a_duplicate_scheme_keeps_the_first_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    registry = PluginRegistry()
    first, second = FakeTransport(), FakeTransport()
    registry.register(make_plugin("one", transports=[first]), "one")
    with caplog.at_level(logging.WARNING, logger="cinema.plugins"):
        registry.register(make_plugin("two", transports=[second]), "two")
    assert registry.transport("fake") is first
    assert "provides scheme 'fake' again" in caplog.text


def _fake_entry_points(*eps: importlib.metadata.EntryPoint) -> object:
    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    return entry_points


def test_an_entry_point_that_fails_to_import_is_named(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: None
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="cinema-broken", value="cinema_no_such_module_xyz", group="cinema"
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points(broken))
    with pytest.raises(PluginLoadError, match="'cinema-broken'") as info:
        load_plugins(reload=True)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_entry_points_with_one_name_load_once(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: None, caplog: pytest.LogCaptureFixture
) -> None:
    eps = [
        importlib.metadata.EntryPoint(name="dup", value="cinema.remote._tcp", group="cinema"),
        importlib.metadata.EntryPoint(name="dup", value="cinema.remote._tcp", group="cinema"),
        importlib.metadata.EntryPoint(name="dup", value="cinema.remote._unix", group="cinema"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points(*eps))
    with caplog.at_level(logging.WARNING, logger="cinema.plugins"):
        registry = load_plugins(reload=True)
    assert sorted(registry.transports) == ["tcp"]
    # Same value twice (editable + wheel) is silent; a different plugin under the name is not.
    assert caplog.text.count("ignoring entry point 'dup'") == 1


class Upper(Serializer):
    name: ClassVar[str] = "upper"

    def handles(self, cls: type) -> bool:
        return cls is str

    def type_name(self, cls: type) -> str:
        return "str"

    def encode(self, message: object) -> bytes:
        return str(message).upper().encode()

    def decode(self, data: bytes, cls: type[object]) -> object:  # type: ignore[override]  # test double
        return data.decode()


def test_serializers_register_like_transports() -> None:
    registry = PluginRegistry()
    registry.register(make_plugin("upper", serializers=[Upper()]))
    assert registry.serializer("upper").encode("hi") == b"HI"
