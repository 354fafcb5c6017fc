"""Choosing a serializer: by message class when sending, by wire name when receiving.

Protobuf is built in and needs no lookup (it is the only serializer on the hot path of most
users, and an empty ``Envelope.serializer`` means protobuf). Every other serializer comes from
the plugin registry: a third-party distribution adds one through an entry point in the
``cinema`` group, with no change to Cinema.
"""

from __future__ import annotations

from typing import Final, final

from google.protobuf.message import Message as ProtoMessage

from cinema import PluginNotFound, PluginRegistry, load_plugins
from cinema.abc import Serializer

from ._errors import UnknownSerializer
from ._peerlog import PEER_TEXT_LIMIT, clip
from ._protobuf import ProtobufSerializer

__all__ = ["PROTOBUF", "SerializerChoice", "Serializers", "wire_name"]


#: The built-in protobuf serializer (the same one the plugin hook provides).
PROTOBUF: Final = ProtobufSerializer()

#: What a ``serializer=`` option takes: an instance, a registered name, or ``None`` (choose by
#: the message class).
SerializerChoice = Serializer | str | None


def wire_name(serializer: Serializer) -> str:
    """What goes into ``Envelope.serializer``: empty for protobuf (wire compatible with peers
    that predate pluggable serializers), the serializer's name otherwise."""
    return "" if serializer.name == PROTOBUF.name else serializer.name


@final
class Serializers:
    """One side's view of the installed serializers, with a per-class cache.

    :param plugins: where serializers are looked up by name and by class; by default the
        process-wide registry (:func:`cinema.load_plugins`), loaded on first need.
    :param default: the serializer to use for every message it handles, before any other.
    """

    __slots__ = ("_by_class", "_default", "_described", "_plugins")

    def __init__(
        self, plugins: PluginRegistry | None = None, default: SerializerChoice = None
    ) -> None:
        self._plugins = plugins
        self._by_class: dict[type, Serializer] = {}
        self._described: dict[type, tuple[Serializer, str, str]] = {}
        self._default: Serializer | None = None
        if default is not None:
            self._default = self.resolve(default)

    @property
    def default(self) -> Serializer | None:
        """The serializer preferred for every class it handles, if one was given."""
        return self._default

    def describe(self, cls: type, choice: Serializer | None = None) -> tuple[Serializer, str, str]:
        """For sending a message of ``cls``: its serializer, wire type name and the value of
        ``Envelope.serializer``, cached (this runs for every message sent).

        :raises UnknownSerializer: no serializer handles ``cls``.
        :raises TypeError: ``choice`` does not handle ``cls``.
        """
        if choice is not None:
            # Not cached: callers may make any number of serializer instances.
            serializer = self.for_class(cls, choice)
            return serializer, serializer.type_name(cls), wire_name(serializer)
        found = self._described.get(cls)
        if found is None:
            serializer = self.for_class(cls)
            found = (serializer, serializer.type_name(cls), wire_name(serializer))
            self._described[cls] = found
        return found

    @property
    def plugins(self) -> PluginRegistry:
        """The registry (loading the installed plugins the first time it is needed)."""
        if self._plugins is None:
            self._plugins = load_plugins()
        return self._plugins

    def resolve(self, choice: Serializer | str) -> Serializer:
        """The serializer an explicit ``serializer=`` option names.

        :raises UnknownSerializer: no serializer is registered under that name.
        """
        if isinstance(choice, Serializer):
            return choice
        return self.named(choice)

    def named(self, name: str) -> Serializer:
        """The serializer for an ``Envelope.serializer`` value (``""`` is protobuf).

        :raises UnknownSerializer: no serializer is registered under that name.
        """
        if not name or name == PROTOBUF.name:
            return PROTOBUF
        default = self._default
        if default is not None and default.name == name:
            return default
        try:
            return self.plugins.serializer(name)
        except PluginNotFound as exc:
            if len(name) > PEER_TEXT_LIMIT:  # a peer's string: do not echo it whole
                raise UnknownSerializer(f"no serializer named {clip(name)!r}") from None
            raise UnknownSerializer(str(exc)) from None

    def for_class(self, cls: type, choice: SerializerChoice = None) -> Serializer:
        """The serializer for messages of ``cls``: ``choice`` if given, else this side's
        default if it handles ``cls``, else protobuf for protobuf classes, else the first
        registered serializer whose ``handles(cls)`` is true.

        :raises UnknownSerializer: no serializer handles ``cls`` (or ``choice`` names none).
        :raises TypeError: ``choice`` does not handle ``cls``.
        """
        if choice is not None:
            chosen = self.resolve(choice)
            if not chosen.handles(cls):
                raise TypeError(f"serializer {chosen.name!r} does not handle {cls!r}")
            return chosen
        found = self._by_class.get(cls)
        if found is not None:
            return found
        default = self._default
        if default is not None and default.handles(cls):
            found = default
        elif isinstance(cls, type) and issubclass(cls, ProtoMessage):
            found = PROTOBUF
        else:
            found = next((s for s in self.plugins.serializers.values() if s.handles(cls)), None)
            if found is None:
                raise UnknownSerializer(
                    f"no serializer handles {cls!r}; installed:"
                    f" {sorted(self.plugins.serializers)} (a serializer plugin must be installed,"
                    " or pass serializer=)"
                )
        self._by_class[cls] = found
        return found
