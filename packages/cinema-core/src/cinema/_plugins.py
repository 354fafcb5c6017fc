"""Plugin discovery: pluggy hook specifications and a typed registry of what plugins provide.

Plugins are objects (usually modules) with functions marked by :data:`hookimpl`, announced
through entry points in the ``cinema`` group, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points.cinema]
    my-transport = "my_package._cinema_plugin"

Nothing is loaded at import time: :func:`load_plugins` loads the entry points once per process,
the first time a system or node is created (or a user asks). Hook calls return ``Any`` in
pluggy, so each hook has a small typed wrapper here that checks what plugins return; user code
never touches ``pm.hook``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, final

import pluggy

from ._errors import CinemaError
from .abc import Serializer, Transport, hookimpl

__all__ = [
    "PROJECT_NAME",
    "PluginLoadError",
    "PluginNotFound",
    "PluginRegistry",
    "hookimpl",
    "hookspec",
    "load_plugins",
]

log = logging.getLogger("cinema.plugins")

#: The pluggy project name and the entry-point group plugins register under.
PROJECT_NAME: Final = "cinema"

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)

# Which distribution provides which scheme, so that a missing one can say what to install.
_KNOWN_PROVIDERS: Final = {
    "tcp": "cinema-remote",
    "unix": "cinema-remote",
    "protobuf": "cinema-remote",
    "mem": "cinema-cluster",
    "memory": "cinema-persistence",
    "sqlite": "cinema-persistence",
    "postgresql": "cinema-persistence[postgresql]",
}


class PluginLoadError(CinemaError):
    """A plugin could not be loaded or returned something unusable.

    The message names the entry point (or plugin) at fault; the original exception, if any, is the
    ``__cause__``.
    """


class PluginNotFound(CinemaError, LookupError):
    """No installed plugin provides the requested transport scheme or serializer."""


class CinemaHookSpecs:
    """The hooks a Cinema plugin may implement. Each is optional."""

    @hookspec
    def cinema_transports(self) -> Iterable[Transport]:
        """Return the transports this plugin provides (:class:`cinema.abc.Transport` instances)."""
        return ()

    @hookspec
    def cinema_serializers(self) -> Iterable[Serializer]:
        """Return the serializers this plugin provides (``cinema.abc.Serializer`` instances)."""
        return ()

    @hookspec
    def cinema_journals(self) -> Iterable[object]:
        """Return the event journals this plugin provides, each with a URL ``scheme`` attribute
        (``cinema.persistence.JournalPlugin`` instances; cinema-persistence checks the type)."""
        return ()


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(CinemaHookSpecs)
    return pm


def _describe(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    origin = f" from distribution {dist.name!r}" if dist is not None else ""
    return f"entry point {ep.name!r} ({ep.value}){origin} in group {PROJECT_NAME!r}"


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    seen: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=PROJECT_NAME):
        if ep.name in seen:
            # The same distribution visible twice on sys.path (editable + wheel) is harmless;
            # two different plugins under one name would make one silently vanish, so say so.
            if seen[ep.name] != ep.value:
                log.warning(
                    "ignoring %s: the name is already used by %r", _describe(ep), seen[ep.name]
                )
            continue
        seen[ep.name] = ep.value
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(f"cannot load Cinema plugin {_describe(ep)}: {exc!r}") from exc
        _register(pm, plugin, ep.name)


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        raise PluginLoadError(f"invalid Cinema plugin {name!r}: {exc}") from exc


def _collect(pm: pluggy.PluginManager, hook_name: str, kind: type[Any], key: str) -> dict[str, Any]:
    """Call one hook implementation at a time, so that a bad result names its plugin."""
    found: dict[str, Any] = {}
    # get_hookimpls() lists implementations in registration order: the first registered
    # provider of a name wins, and a later duplicate is the one reported.
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            items = list(impl.function())
        except Exception as exc:
            raise PluginLoadError(
                f"Cinema plugin {impl.plugin_name!r} failed in {hook_name}(): {exc!r}"
            ) from exc
        for item in items:
            if not isinstance(item, kind):
                raise PluginLoadError(
                    f"Cinema plugin {impl.plugin_name!r} returned {item!r} from {hook_name}(),"
                    f" which is not a {kind.__module__}.{kind.__qualname__}"
                )
            name = getattr(item, key, None)
            if not isinstance(name, str) or not name:
                raise PluginLoadError(
                    f"Cinema plugin {impl.plugin_name!r} returned {item!r} without a {key}"
                )
            if name in found:
                log.warning(
                    "Cinema plugin %r provides %s %r again; keeping %r",
                    impl.plugin_name,
                    key,
                    name,
                    found[name],
                )
                continue
            found[name] = item
    return found


@final
class PluginRegistry:
    """What the installed plugins provide: transports by URL scheme, serializers by name.

    Get the process-wide one with :func:`load_plugins` (an ``ActorSystem`` exposes it as
    ``system.plugins``). A new empty registry (``PluginRegistry()``) is useful in tests and for
    registering plugins by hand with :meth:`register`.
    """

    def __init__(self) -> None:
        self._pm = _plugin_manager()
        self._lock = threading.Lock()
        self._transports: dict[str, Transport] = {}
        self._serializers: dict[str, Serializer] = {}
        self._journals: dict[str, object] = {}

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object (a module or object with :data:`hookimpl` functions).

        :param plugin: the plugin.
        :param name: a unique name; defaults to pluggy's canonical name for the object.
        :raises PluginLoadError: the plugin is invalid or its hooks return unusable objects.
        """
        with self._lock:
            _register(self._pm, plugin, name or self._pm.get_canonical_name(plugin))
            try:
                self._refresh()
            except PluginLoadError:
                # Keep the registry usable: drop the plugin whose hooks returned garbage.
                self._pm.unregister(plugin)
                self._refresh()
                raise

    def _load_entry_points(self) -> None:
        with self._lock:
            _load_entry_points(self._pm)
            self._refresh()

    def _refresh(self) -> None:
        self._transports = _collect(self._pm, "cinema_transports", Transport, "scheme")
        self._serializers = _collect(self._pm, "cinema_serializers", Serializer, "name")
        self._journals = _collect(self._pm, "cinema_journals", object, "scheme")

    def transport(self, scheme: str) -> Transport:
        """The transport for a URL scheme, e.g. ``"tcp"``.

        :raises PluginNotFound: no installed plugin serves that scheme (the message says what to
            install when Cinema knows).
        """
        try:
            return self._transports[scheme]
        except KeyError:
            raise PluginNotFound(
                f"no Cinema transport for scheme {scheme!r}{_hint(scheme)};"
                f" installed: {sorted(self._transports) or 'none'}"
            ) from None

    def serializer(self, name: str) -> Serializer:
        """The serializer registered under ``name``, e.g. ``"protobuf"``.

        :raises PluginNotFound: no installed plugin provides it.
        """
        try:
            return self._serializers[name]
        except KeyError:
            raise PluginNotFound(
                f"no Cinema serializer named {name!r}{_hint(name)};"
                f" installed: {sorted(self._serializers) or 'none'}"
            ) from None

    def journal(self, scheme: str) -> object:
        """The journal plugin for a URL scheme, e.g. ``"sqlite"`` (see ``cinema.persistence``).

        :raises PluginNotFound: no installed plugin serves that scheme.
        """
        try:
            return self._journals[scheme]
        except KeyError:
            raise PluginNotFound(
                f"no Cinema journal for scheme {scheme!r}{_hint(scheme)};"
                f" installed: {sorted(self._journals) or 'none'}"
            ) from None

    @property
    def journals(self) -> Mapping[str, object]:
        """All journal plugins, by scheme (read-only view)."""
        return MappingProxyType(self._journals)

    @property
    def transports(self) -> Mapping[str, Transport]:
        """All transports, by scheme (read-only view)."""
        return MappingProxyType(self._transports)

    @property
    def serializers(self) -> Mapping[str, Serializer]:
        """All serializers, by name (read-only view)."""
        return MappingProxyType(self._serializers)

    @property
    def plugin_names(self) -> list[str]:
        """Names of the registered plugins (entry point names for installed ones), sorted."""
        return sorted(name for name, _ in self._pm.list_name_plugin())

    def __repr__(self) -> str:
        return (
            f"<PluginRegistry transports={sorted(self._transports)}"
            f" serializers={sorted(self._serializers)}>"
        )


for _public in (PluginRegistry, PluginLoadError, PluginNotFound):
    _public.__module__ = "cinema"


def _hint(name: str) -> str:
    dist = _KNOWN_PROVIDERS.get(name)
    return f" (pip install {dist})" if dist else ""


_cache_lock = threading.Lock()
_cached: PluginRegistry | None = None


def load_plugins(*, reload: bool = False) -> PluginRegistry:
    """Load the plugins installed in the ``cinema`` entry-point group, once per process.

    :param reload: discard the cached registry and load the entry points again (for tests, or
        after installing a distribution into the running process).
    :returns: the process-wide :class:`PluginRegistry`.
    :raises PluginLoadError: an entry point failed to import or its plugin is invalid; the
        message names the entry point. Nothing is cached then, so a later call retries.
    """
    global _cached
    with _cache_lock:
        if reload:
            _cached = None
        if _cached is None:
            registry = PluginRegistry()
            registry._load_entry_points()
            _cached = registry
        return _cached
