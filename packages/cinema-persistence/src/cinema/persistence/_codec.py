"""Events and snapshots to stored rows and back, through the serializer plugins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cinema import PluginRegistry
from cinema.abc import Serializer
from cinema.remote import ProtobufSerializer

from ._errors import UnserializableEvent

__all__ = ["Codec", "register_types"]

# Every class that may come back from a journal (the event types of each PersistentActor
# subclass, snapshot types, and what users register): how a stored type name finds its class.
_known_types: set[type] = set()
_known_lock = threading.Lock()
_generation = 0


def register_types(*classes: type) -> None:
    """Make ``classes`` decodable from journals and queries in this process.

    The event types a :class:`PersistentActor` subclass names in ``PersistentActor[E]`` are
    registered when the class is defined; register others (snapshot states of a ``snapshot_type``
    you did not declare, types read only through queries) with this.
    """
    global _generation
    with _known_lock:
        for cls in classes:
            if not isinstance(cls, type):
                raise TypeError(f"register_types() takes classes, not {cls!r}")
            if cls not in _known_types:
                _known_types.add(cls)
                _generation += 1


class Codec:
    """Encodes with the first installed serializer that ``handles`` the type, and decodes by the
    (serializer, type name) pair the row stores."""

    def __init__(self, plugins: PluginRegistry) -> None:
        self._plugins = plugins
        self._by_type: dict[type, tuple[Serializer, str]] = {}
        self._by_name: dict[tuple[str, str], type] = {}
        self._generation = -1
        self._decoders: dict[tuple[str, str], Callable[[bytes], Any]] = {}

    def serializer_for(self, cls: type) -> tuple[Serializer, str]:
        """The serializer of ``cls`` and its type name.

        :raises UnserializableEvent: no installed serializer handles ``cls``.
        """
        found = self._by_type.get(cls)
        if found is not None:
            return found
        for serializer in self._plugins.serializers.values():
            try:
                if serializer.handles(cls):
                    found = (serializer, serializer.type_name(cls))
                    break
            except Exception as exc:
                raise UnserializableEvent(
                    f"serializer {serializer.name!r} failed on {cls.__qualname__}: {exc!r}"
                ) from exc
        if found is None:
            raise UnserializableEvent(
                f"no installed serializer handles {cls.__module__}.{cls.__qualname__} (installed:"
                f" {sorted(self._plugins.serializers) or 'none'}); events and snapshots must be"
                " of a type a serializer plugin handles (protobuf messages, ...)"
            )
        self._by_type[cls] = found
        return found

    def encode(self, obj: object) -> tuple[str, str, bytes]:
        """``(serializer name, type name, bytes)`` of ``obj``.

        :raises UnserializableEvent: no serializer handles it, or encoding failed.
        """
        serializer, type_name = self.serializer_for(type(obj))
        try:
            payload = serializer.encode(obj)
        except Exception as exc:
            raise UnserializableEvent(
                f"serializer {serializer.name!r} cannot encode {obj!r}: {exc!r}"
            ) from exc
        if not isinstance(payload, bytes):
            raise UnserializableEvent(
                f"serializer {serializer.name!r} returned {type(payload).__name__}, not bytes"
            )
        return serializer.name, type_name, payload

    def decoder(self, serializer_name: str, type_name: str) -> Callable[[bytes], Any]:
        """A function decoding the payloads of rows naming ``(serializer, type)``; cached.

        :raises LookupError: the serializer is not installed or the type is not registered.
        """
        key = (serializer_name, type_name)
        found = self._decoders.get(key)
        if found is None:
            try:
                serializer = self._plugins.serializer(serializer_name)
            except LookupError:
                raise LookupError(f"the serializer {serializer_name!r} is not installed") from None
            decode, cls = serializer.decode, self._class_of(serializer_name, type_name)
            if type(serializer) is ProtobufSerializer:
                # Recovery's hot path: the class's own parser, without the serializer's
                # per-call checks (the class is a protobuf message: the serializer handles it).
                found = cls.FromString  # type: ignore[attr-defined]
            else:

                def found(payload: bytes) -> Any:
                    return decode(payload, cls)

            self._decoders[key] = found
        return found

    def decode(self, serializer_name: str, type_name: str, payload: bytes) -> Any:
        """The object a row stores.

        :raises LookupError: the serializer is not installed or the type is not registered.
        :raises ValueError: the bytes do not decode.
        """
        decode = self.decoder(serializer_name, type_name)
        try:
            return decode(payload)
        except Exception as exc:
            raise ValueError(
                f"{serializer_name!r} cannot decode the stored {type_name!r}: {exc!r}"
            ) from exc

    def _class_of(self, serializer_name: str, type_name: str) -> type:
        cls = self._by_name.get((serializer_name, type_name))
        if cls is None and self._generation != _generation:
            with _known_lock:
                known, self._generation = list(_known_types), _generation
            for candidate in known:
                try:
                    serializer, name = self.serializer_for(candidate)
                except UnserializableEvent:
                    continue
                self._by_name.setdefault((serializer.name, name), candidate)
            cls = self._by_name.get((serializer_name, type_name))
        if cls is None:
            raise LookupError(
                f"no registered class is {serializer_name}:{type_name!r} (name it in"
                " PersistentActor[...] or cinema.persistence.register_types())"
            )
        return cls
