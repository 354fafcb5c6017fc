"""The reply type ``R`` of a ``Message[R]`` class, read at run time (to decode typed replies)."""

from __future__ import annotations

import sys
from typing import Any, ForwardRef, TypeVar, get_args, get_origin

from cinema import Message

__all__ = ["NO_REPLY_TYPE", "reply_type"]

#: What :func:`reply_type` returns for a class that is not a ``Message[R]``.
NO_REPLY_TYPE: Any = object()

_cache: dict[type, object] = {}


def reply_type(cls: type) -> object:
    """The ``R`` that ``cls`` (a subclass of ``Message[R]``) declares, cached; also through
    generic intermediates (``class Ask(Query[int])`` with ``class Query(Message[T])``).

    :returns: the type expression (``str``, ``list[Item]``, ``None``, ...), ``Any`` for a bare
        ``Message`` base, or :data:`NO_REPLY_TYPE` for a class that is no ``Message``.
    :raises TypeError: ``R`` is a string that cannot be resolved in the class's module.
    """
    try:
        return _cache[cls]
    except KeyError:
        pass
    found = _search(cls, {}) if issubclass(cls, Message) else NO_REPLY_TYPE
    found = _resolve(found, cls)
    _cache[cls] = found
    return found


def _search(cls: type, subst: dict[Any, Any]) -> object:
    bases = vars(cls).get("__orig_bases__", cls.__bases__)
    for base in bases:
        origin = get_origin(base) or base
        args = tuple(subst.get(a, a) if isinstance(a, TypeVar) else a for a in get_args(base))
        if origin is Message:
            return args[0] if args else Any
        if isinstance(origin, type) and issubclass(origin, Message):
            params = getattr(origin, "__parameters__", ())
            found = _search(origin, dict(zip(params, args, strict=False)))
            if found is not NO_REPLY_TYPE:
                return found
    return Any if cls is Message else NO_REPLY_TYPE


def _resolve(tp: object, cls: type) -> object:
    if isinstance(tp, TypeVar):
        return Any  # a generic message used without its parameter
    if isinstance(tp, ForwardRef):
        tp = tp.__forward_arg__
    if isinstance(tp, str):
        module = sys.modules.get(cls.__module__)
        namespace = dict(vars(module)) if module is not None else {}
        try:
            return eval(tp, namespace, dict(vars(cls)))
        except Exception as exc:
            raise TypeError(
                f"cannot resolve the reply type {tp!r} of {cls.__qualname__}: {exc}"
            ) from exc
    if tp is type(None):
        return None
    return tp
