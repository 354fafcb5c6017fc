"""Every public name of cinema.remote (and cinema.abc) exists, is documented and reads well."""

from __future__ import annotations

import inspect

import cinema.abc
import cinema.remote


def test_all_is_sorted_and_complete() -> None:
    names = cinema.remote.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(cinema.remote, name), name


def test_public_classes_present_as_cinema_remote_or_cinema() -> None:
    for name in cinema.remote.__all__:
        obj = getattr(cinema.remote, name)
        if inspect.isclass(obj) and not name.endswith("Envelope"):
            assert obj.__module__ in ("cinema", "cinema.remote", "cinema.abc"), (
                name,
                obj.__module__,
            )
            assert obj.__doc__, name


def test_seed_names_from_the_contract() -> None:
    for name in (
        "LocalNode",
        "RemoteServer",
        "RemoteClient",
        "TcpTransport",
        "Transport",
        "MessageRouter",
        "Envelope",
        "RemoteAddr",
        "ConnectionLost",
        "UnknownActor",
        "UnknownMessageType",
        "RemoteHandlerError",
        "ActorStopped",
    ):
        assert name in cinema.remote.__all__, name


def test_errors_are_cinema_errors() -> None:
    from cinema import ActorStopped, CinemaError

    assert cinema.remote.ActorStopped is ActorStopped
    for name in cinema.remote.__all__:
        obj = getattr(cinema.remote, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, CinemaError), name


def test_abc_names() -> None:
    assert cinema.abc.__all__ == ["Connection", "Listener", "Serializer", "Transport", "hookimpl"]
    assert repr(cinema.remote.TcpTransport()) == "TcpTransport()"
    assert repr(cinema.remote.LocalNode("n")) == "LocalNode('n')"
