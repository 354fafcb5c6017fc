"""The ``@handler`` decorator and the per-class dispatch tables built from it."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin

from ._errors import HandlerDefinitionError, UnhandledMessage

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__cinema_handler__"


def handler(func: F) -> F:
    """Mark an actor method as the handler of the type its message parameter is annotated with.

    The method takes ``(self, msg, ctx)``; it may be ``def`` or ``async def``. Dispatch follows
    the class hierarchy of the message: a handler for a base class serves its subclasses, and
    the most specific handler wins. A union annotation (``A | B``) handles each member.

    :param func: the method to mark
    :return: the same function, unchanged
    """
    setattr(func, _MARK, True)
    return func


class Parked(Exception):  # a control-flow signal, never seen by users
    """Raised by :class:`AsyncHandler` to end the dispatcher's turn for an actor."""


class AsyncHandler:
    """Dispatch entry of an ``async def`` handler.

    Sync handlers sit in the dispatch table as plain functions, so the dispatcher's hot loop
    calls them with no check at all. Calling this entry instead hands the handler to a task of
    its own and raises :class:`Parked`, which ends the actor's turn until the task is done; an
    exception costs nothing next to starting a task.
    """

    __slots__ = ("func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, actor: object, msg: object, ctx: Any) -> None:
        ctx._dispatcher.start_handler(ctx, self.func, (actor, msg, ctx), None)
        raise Parked


# A dispatch entry: the sync handler function itself, or an AsyncHandler.
Entry = Callable[..., Any]


class ClassInfo:
    """What the runtime needs to know about one actor class, computed once per class."""

    __slots__ = (
        "cls",
        "declared",
        "finished",
        "finished_async",
        "handle",
        "handle_async",
        "missing",
        "started",
        "started_async",
        "stopped",
        "stopped_async",
        "table",
    )

    def __init__(self, cls: type) -> None:
        self.cls = cls
        # message type -> entry, as declared by @handler methods (most derived class wins)
        self.declared: dict[type, Entry] = {}
        # message type -> entry, resolved along the message's MRO; the runtime's hot path
        # reads this dict only. Types known to have no handler are in ``missing``.
        self.table: dict[type, Entry] = {}
        self.missing: set[type] = set()
        self.started, self.started_async = _hook(cls, "started")
        self.stopped, self.stopped_async = _hook(cls, "stopped")
        self.handle, self.handle_async = _hook(cls, "handle")
        self.finished, self.finished_async = _hook(cls, "finished")
        seen: set[str] = set()
        for klass in cls.__mro__:
            # Two handlers of one class for the same type: which one runs would be an accident
            # of attribute order. (A subclass's handler replacing its base's is fine.)
            own: dict[type, str] = {}
            for name, value in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                func = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                if callable(func) and getattr(func, _MARK, False):
                    for msg_type in _message_types(cls, name, func):
                        other = own.setdefault(msg_type, name)
                        if other != name:
                            raise HandlerDefinitionError(
                                f"{klass.__qualname__}.{other} and {klass.__qualname__}.{name} "
                                f"both handle {msg_type.__qualname__}: keep one"
                            )
                        entry = AsyncHandler(func) if _is_async(func) else func
                        self.declared.setdefault(msg_type, entry)

    def lookup(self, msg_type: type) -> Entry | None:
        """The handler entry for ``msg_type``, or ``None``; cached.

        ``table`` holds only types that have a handler, so ``type(msg) in table`` is the
        whole check on the hot path.
        """
        entry = self.table.get(msg_type)
        if entry is not None:
            return entry
        if msg_type in self.missing:
            return None
        for base in msg_type.__mro__:
            entry = self.declared.get(base)
            if entry is not None:
                self.table[msg_type] = entry
                return entry
        self.missing.add(msg_type)
        return None


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func)


def _hook(cls: type, name: str) -> tuple[Callable[..., Any] | None, bool]:
    """The lifecycle/stream hook ``name`` if a class overrides the base no-op, else None."""
    func = getattr(cls, name, None)
    if func is None or getattr(func, "__cinema_default__", False):
        return None, False
    return func, _is_async(func)


def _message_types(cls: type, name: str, func: Callable[..., Any]) -> list[type]:
    where = f"{cls.__qualname__}.{name}"
    code = getattr(func, "__code__", None)
    if code is None or code.co_argcount < 2:
        raise HandlerDefinitionError(
            f"handler {where} must take (self, message, ctx); it takes no message parameter"
        )
    if code.co_argcount < 3 and not code.co_flags & inspect.CO_VARARGS:
        raise HandlerDefinitionError(
            f"handler {where} must take (self, message, ctx); it has no ctx parameter"
        )
    param = code.co_varnames[1]
    annotations = getattr(func, "__annotations__", {})
    if param not in annotations:
        raise HandlerDefinitionError(
            f"handler {where} has no type annotation on its message parameter {param!r}: "
            "Cinema dispatches by that annotation"
        )
    annotation = annotations[param]
    if isinstance(annotation, str):
        module = sys.modules.get(func.__module__)
        globalns = dict(vars(module)) if module is not None else {}
        globalns.update(getattr(func, "__globals__", {}))
        try:
            annotation = eval(annotation, globalns, dict(vars(cls)))
        except Exception as exc:
            raise HandlerDefinitionError(
                f"cannot resolve the message annotation {annotation!r} of handler {where}: "
                f"{exc}. The name must be importable from the module that defines the handler."
            ) from exc
    return _flatten(annotation, where)


def _flatten(annotation: object, where: str) -> list[type]:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        result: list[type] = []
        for arg in get_args(annotation):
            result.extend(_flatten(arg, where))
        return result
    if origin is typing.Annotated:
        return _flatten(get_args(annotation)[0], where)
    if origin is not None and isinstance(origin, type):
        return [origin]
    if isinstance(annotation, type):
        return [annotation]
    raise HandlerDefinitionError(
        f"the message annotation of handler {where} must be a class or a union of classes, "
        f"not {annotation!r}"
    )


# Actor classes live as long as their module, so a plain dict (much faster than a weak one on
# the spawn path) holds one ClassInfo per class.
_infos: dict[type, ClassInfo] = {}


def class_info(cls: type) -> ClassInfo:
    """The (cached) :class:`ClassInfo` of an actor class."""
    try:
        return _infos[cls]
    except KeyError:
        info = _infos[cls] = ClassInfo(cls)
        return info


def handled_types(cls: type) -> tuple[type, ...]:
    """The message classes that the ``@handler`` methods of actor class ``cls`` declare (each
    handler's annotation, unions flattened), in definition order, most derived class first.

    :raises cinema.HandlerDefinitionError: a handler of ``cls`` is malformed.
    """
    return tuple(class_info(cls).declared)


def _undecorated_handler(cls: type, msg_type: type) -> str | None:
    """A method of ``cls`` not marked ``@handler`` whose message annotation takes ``msg_type``."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__ == "cinema._actor" or klass is object:
            continue
        for name, value in vars(klass).items():
            if name in seen or name.startswith("__"):
                continue
            seen.add(name)
            func = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            if not inspect.isfunction(func) or getattr(func, _MARK, False):
                continue
            try:
                types_ = _message_types(cls, name, func)
            except Exception:
                continue
            if any(issubclass(msg_type, t) for t in types_):
                return f"{klass.__qualname__}.{name}"
    return None


def unhandled(actor_type: type, msg_type: type) -> UnhandledMessage:
    """The :class:`cinema.UnhandledMessage` for ``msg_type``, naming a likely forgotten
    ``@handler``."""
    method = _undecorated_handler(actor_type, msg_type)
    hint = f": {method} takes it but is not marked @handler" if method is not None else ""
    return UnhandledMessage(actor_type, msg_type, hint)
