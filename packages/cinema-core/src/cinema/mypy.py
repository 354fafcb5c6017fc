"""Static message safety for Cinema: a mypy plugin.

Enable it in the mypy configuration::

    [tool.mypy]
    plugins = ["cinema.mypy"]

It reports ``cinema-unhandled`` where a message is sent to an actor that has no
``@handler`` for its type: ``Addr[A].send`` / ``Addr[A].do_send``, self-delivery through
``Context[A].run_later`` / ``Context[A].run_interval``, and ``Context[A].watch`` when ``A``
has no handler for :class:`cinema.Terminated`, and ``Context[A].add_stream(stream)`` when ``A``
is not a ``StreamHandler[T]`` whose ``T`` the stream yields. The runtime raises
:class:`cinema.UnhandledMessage` in the same cases; the plugin only moves the error earlier.

It reports ``cinema-handler`` at a ``@handler`` definition the runtime refuses
(:class:`cinema.HandlerDefinitionError`: no message or ctx parameter, two handlers of one class
for one type, an annotation that is not a class) and at one whose return type is not the
``R`` of the ``Message[R]`` it takes. And it types the reply of ``send`` for a final message
class that is not a ``Message[R]`` (a protobuf message) from the handler that takes it.
``RemoteAddr[A].call`` and ``ClusterRemoteAddr[A].call`` are checked against ``A`` (the class
given to ``remote_addr``) the same way, and an ``rpc(Req, Resp)``'s ``Resp`` against what
``A``'s handler for ``Req`` returns.

Two phases, because decorators do not survive mypy's cache:

* semantic analysis (base-class hook): for every subclass of ``Actor``, the names of its
  ``@handler`` methods are recorded in ``TypeInfo.metadata``, which mypy serializes;
* type checking (method hooks): the handled message types are read back from the recorded
  methods' signatures (which are cached too) and compared with the message's type.

Where nothing is known the plugin stays silent: ``Addr[Any]``, type variables (except
``Self``, which stands for at least its class), unannotated handlers, and actors with a base
class that is not an actor but has decorated methods (they might be handlers).

``cinema`` never imports this module; only mypy does. Tested with mypy 1.11 to 2.4.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from mypy.erasetype import erase_typevars
from mypy.errorcodes import ErrorCode
from mypy.expandtype import expand_type_by_instance
from mypy.maptype import map_instance_to_supertype
from mypy.messages import format_type_bare
from mypy.nodes import (
    ARG_STAR,
    ARG_STAR2,
    NOT_ABSTRACT,
    Block,
    Decorator,
    FuncDef,
    IfStmt,
    RefExpr,
    Statement,
    TypeInfo,
)
from mypy.nodes import Context as NodeContext
from mypy.plugin import ClassDefContext, FunctionContext, MethodContext, Plugin
from mypy.server.trigger import make_trigger, make_wildcard_trigger
from mypy.subtypes import is_subtype
from mypy.typeops import make_simplified_union
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    LiteralType,
    NoneType,
    ProperType,
    TupleType,
    Type,
    TypeOfAny,
    TypeType,
    TypeVarLikeType,
    TypeVarType,
    UninhabitedType,
    UnionType,
    get_proper_type,
)
from mypy.typevars import fill_typevars, fill_typevars_with_any

__all__ = ["CINEMA_HANDLER", "CINEMA_UNHANDLED", "CinemaPlugin", "plugin"]

#: The error code of every report; disable it with ``disable_error_code = ["cinema-unhandled"]``
#: or per line with ``# type: ignore[cinema-unhandled]``.
CINEMA_UNHANDLED: Final = ErrorCode(
    "cinema-unhandled", "Check that the target actor has a handler for the message", "Cinema"
)

#: The error code of a ``@handler`` definition that the runtime refuses or that breaks its
#: message's reply type: disable it like ``cinema-unhandled``.
CINEMA_HANDLER: Final = ErrorCode(
    "cinema-handler", "Check @handler definitions against their messages", "Cinema"
)

_ACTOR: Final = "cinema._actor.Actor"
_MESSAGE: Final = "cinema._message.Message"
_COROUTINE: Final = "typing.Coroutine"
_HANDLER: Final = "cinema._handler.handler"
_TERMINATED: Final = "cinema._message.Terminated"
_ADDR: Final = "cinema._addr.Addr"
_CONTEXT: Final = "cinema._context.Context"
# The key under TypeInfo.metadata; its value is {"handlers": [method names]}.
_META: Final = "cinema"
# Which formal argument holds the message, per checked method.
_MESSAGE_ARG: Final = {
    f"{_ADDR}.send": 0,
    f"{_ADDR}.do_send": 0,
    f"{_ADDR}.send_from_thread": 0,
    f"{_CONTEXT}.run_later": 1,
    f"{_CONTEXT}.run_interval": 1,
}
_WATCH: Final = f"{_CONTEXT}.watch"
_ADD_STREAM: Final = f"{_CONTEXT}.add_stream"
_STREAM_HANDLER: Final = "cinema._actor.StreamHandler"
# Remote addresses typed by the actor's class (``client.remote_addr(Calc, ...)``): their
# ``call(msg)`` / ``call(rpc, msg)``, with the class that holds them.
_REMOTE_CALLS: Final = {
    "cinema.remote._client.RemoteAddr.call": "cinema.remote._client.RemoteAddr",
    "cinema.cluster._client.ClusterRemoteAddr.call": "cinema.cluster._client.ClusterRemoteAddr",
}
_RPC: Final = "cinema.remote._rpc.Rpc"
_PROTO: Final = "google.protobuf.message.Message"
# The methods whose reply the plugin types for a message that is not a ``Message[R]``.
_REPLYING: Final = frozenset({f"{_ADDR}.send", f"{_ADDR}.send_from_thread"})
# Bases that never carry handlers, so an actor inheriting them is still fully known.
_NEUTRAL_MODULES: Final = frozenset(
    {"builtins", "typing", "typing_extensions", "abc", "collections.abc"}
)


class CinemaPlugin(Plugin):
    """Checks that messages sent to an actor have a handler there (error code
    ``cinema-unhandled``) and that ``@handler`` definitions fit their messages (error code
    ``cinema-handler``)."""

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        """Record the handlers of every class that derives from ``Actor``."""
        if fullname == _ACTOR:
            return _record_handlers
        sym = self.lookup_fully_qualified(fullname)
        if sym is not None and isinstance(sym.node, TypeInfo) and sym.node.has_base(_ACTOR):
            return _record_handlers
        return None

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        """Check every ``@handler`` definition (mypy type-checks a decorator as a call)."""
        if fullname == _HANDLER:
            return _check_handler
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        """Check the message argument of ``send``, ``do_send``, ``run_later``,
        ``run_interval`` and the watcher of ``watch``."""
        if fullname in _MESSAGE_ARG:
            index = _MESSAGE_ARG[fullname]
            owner = _ADDR if fullname.startswith(_ADDR + ".") else _CONTEXT
            replying = fullname in _REPLYING
            return lambda ctx: self._check_message(ctx, owner, index, replying)
        if fullname in _REMOTE_CALLS:
            remote_owner = _REMOTE_CALLS[fullname]
            return lambda ctx: _check_remote_call(ctx, remote_owner)
        if fullname == _WATCH:
            return self._check_watch
        if fullname == _ADD_STREAM:
            return self._check_stream
        return None

    def _check_message(
        self, ctx: MethodContext, owner: str, index: int, replying: bool = False
    ) -> Type:
        # One plain argument only: a message unpacked from *args or **kwargs is not checked.
        if index >= len(ctx.arg_types) or len(ctx.arg_types[index]) != 1:
            return ctx.default_return_type
        if ctx.arg_kinds[index][0] in (ARG_STAR, ARG_STAR2):
            return ctx.default_return_type
        actors = _actor_types(ctx.type, owner)
        message = ctx.arg_types[index][0]
        for actor in actors:
            _report_unhandled(ctx, actor, message, ctx.args[index][0])
        if replying and _reply_is_object(ctx):
            return _typed_reply(ctx, actors, message)
        return ctx.default_return_type

    def _check_watch(self, ctx: MethodContext) -> Type:
        sym = self.lookup_fully_qualified(_TERMINATED)
        if sym is not None and isinstance(sym.node, TypeInfo):
            for actor in _actor_types(ctx.type, _CONTEXT):
                _report_unhandled(ctx, actor, fill_typevars_with_any(sym.node), ctx.context)
        return ctx.default_return_type

    def _check_stream(self, ctx: MethodContext) -> Type:
        # ctx.add_stream(stream): the actor must be a StreamHandler[T] and the stream yield Ts.
        if not ctx.arg_types or len(ctx.arg_types[0]) != 1:
            return ctx.default_return_type
        stream = ctx.arg_types[0][0]
        if isinstance(get_proper_type(stream), AnyType):
            return ctx.default_return_type
        for actor in _actor_types(ctx.type, _CONTEXT):
            name = format_type_bare(actor, ctx.api.options)
            base = next((b for b in actor.type.mro if b.fullname == _STREAM_HANDLER), None)
            if base is None:
                ctx.api.fail(
                    f'Actor "{name}" is not a StreamHandler: it cannot take streams',
                    ctx.args[0][0],
                    code=CINEMA_UNHANDLED,
                )
                continue
            mapped = map_instance_to_supertype(actor, base)
            if len(mapped.args) != 1:
                continue
            item = mapped.args[0]
            expected = ctx.api.named_generic_type("typing.AsyncIterable", [item])
            if not is_subtype(stream, expected):
                ctx.api.fail(
                    f'Actor "{name}" handles stream items of type '
                    f'"{format_type_bare(item, ctx.api.options)}", not the items of '
                    f'"{format_type_bare(stream, ctx.api.options)}"',
                    ctx.args[0][0],
                    code=CINEMA_UNHANDLED,
                )
        return ctx.default_return_type


def _check_remote_call(ctx: MethodContext, owner: str) -> Type:
    """``remote.call(msg)`` and ``remote.call(rpc(Req, Resp), msg)`` on a ``RemoteAddr[A]``:
    ``A`` (the class given to ``remote_addr``) must handle the message; an ``rpc``'s reply type
    must be what ``A``'s handler returns; and an untyped ``call`` of a protobuf message is typed
    by that handler's return (instead of ``Message | None``)."""
    if not ctx.arg_types or len(ctx.arg_types[0]) != 1:
        return ctx.default_return_type
    actors = _actor_types(ctx.type, owner)
    first = get_proper_type(ctx.arg_types[0][0])
    if isinstance(first, Instance) and first.type.fullname == _RPC:
        if len(ctx.arg_types) < 2 or len(ctx.arg_types[1]) != 1 or len(first.args) != 2:
            return ctx.default_return_type
        message, where = ctx.arg_types[1][0], ctx.args[1][0]
        for actor in actors:
            _report_unhandled(ctx, actor, message, where)
        msg = get_proper_type(message)
        if isinstance(msg, Instance) and msg.type.is_final:
            expected = first.args[1]
            for actor in actors:
                ret = _handler_for(actor, msg.type)
                if ret is not None and not is_subtype(ret, expected):
                    ctx.api.fail(
                        f'The rpc expects a "{format_type_bare(expected, ctx.api.options)}" '
                        f'reply, but actor "{format_type_bare(actor, ctx.api.options)}" '
                        f'answers "{format_type_bare(msg, ctx.api.options)}" with a '
                        f'"{format_type_bare(ret, ctx.api.options)}"',
                        ctx.args[0][0],
                        code=CINEMA_HANDLER,
                    )
        return ctx.default_return_type
    for actor in actors:
        _report_unhandled(ctx, actor, first, ctx.args[0][0])
    # The untyped protobuf form decodes the reply by the type name it carries: the handler's
    # reply, when that is a protobuf message or None (what the protobuf serializer can send).
    if not (isinstance(first, Instance) and first.type.has_base(_PROTO)) or not actors:
        return ctx.default_return_type
    proto = Instance(next(b for b in first.type.mro if b.fullname == _PROTO), [])
    replies = []
    for actor in actors:
        ret = _handler_for(actor, first.type) if first.type.is_final else None
        if ret is None or not is_subtype(ret, UnionType([proto, NoneType()])):
            return ctx.default_return_type
        replies.append(ret)
    ret_type = get_proper_type(ctx.default_return_type)
    if isinstance(ret_type, Instance) and ret_type.type.fullname == _COROUTINE:
        return ret_type.copy_modified(
            args=[ret_type.args[0], ret_type.args[1], make_simplified_union(replies)]
        )
    return ctx.default_return_type


def _reply_is_object(ctx: MethodContext) -> bool:
    # Only where the overloads fell back to ``msg: object -> object`` (not a ``Message[R]``).
    ret = get_proper_type(ctx.default_return_type)
    if isinstance(ret, Instance) and ret.type.fullname == _COROUTINE and len(ret.args) == 3:
        ret = get_proper_type(ret.args[2])
    return isinstance(ret, Instance) and ret.type.fullname == "builtins.object"


def _typed_reply(ctx: MethodContext, actors: list[Instance], message: Type) -> Type:
    """The reply type of ``send`` for a message that is not a ``Message[R]`` (a protobuf
    message, say): the return type of the handler the actor declares for exactly that class.

    Sound only where the handler that runs is known: the message's class must be final (as
    mypy-protobuf makes generated classes), so no subclass of it reaches a more specific
    handler, and the handler must take exactly that class, so no handler a subclass of the
    actor adds for it can win (a subclass that replaces it must return a compatible type:
    :func:`_check_replaced`). Otherwise the reply stays ``object``.
    """
    msg = get_proper_type(message)
    if not actors or not isinstance(msg, Instance) or not msg.type.is_final:
        return ctx.default_return_type
    replies = []
    for actor in actors:
        found = _handler_for(actor, msg.type)
        if found is None:
            return ctx.default_return_type
        replies.append(found)
    reply = make_simplified_union(replies)
    ret = get_proper_type(ctx.default_return_type)
    if isinstance(ret, Instance) and ret.type.fullname == _COROUTINE and len(ret.args) == 3:
        return ret.copy_modified(args=[ret.args[0], ret.args[1], reply])
    return reply


def _handler_for(actor: Instance, message: TypeInfo) -> Type | None:
    """The return type of the handler ``actor`` declares for exactly the class ``message``, as
    dispatch finds it (most derived definition first); ``None`` if there is none or if a base
    the plugin cannot see might hold one."""
    seen: set[str] = set()
    for base in actor.type.mro:
        meta = base.metadata.get(_META)
        if meta is None:
            if _may_hold_handlers(base):
                return None
        else:
            mapped = map_instance_to_supertype(actor, base)
            for name in meta.get("handlers", ()):
                if name in seen:
                    continue
                func = _handler_func(base, name)
                sig = get_proper_type(func.type) if func is not None else None
                if func is None or not isinstance(sig, CallableType) or len(sig.arg_types) < 2:
                    continue
                taken = _union_items(get_proper_type(sig.arg_types[1]))
                if any(isinstance(t, Instance) and t.type is message for t in taken):
                    ret = _handler_return(func, sig)
                    if ret is None:
                        return None
                    return erase_typevars(expand_type_by_instance(ret, mapped))
        seen.update(base.names)
    return None


def _handler_func(info: TypeInfo, name: str) -> FuncDef | None:
    sym = info.names.get(name)
    node = sym.node if sym is not None else None
    func = node.func if isinstance(node, Decorator) else node
    if not isinstance(func, FuncDef) or func.is_static or func.is_class:
        return None
    return func


def _handler_return(func: FuncDef, sig: CallableType) -> Type | None:
    """What a handler replies: its declared return type, without the coroutine of an ``async
    def``; ``None`` when not annotated."""
    if sig.implicit:
        return None
    ret = get_proper_type(sig.ret_type)
    if func.is_coroutine:
        if not (
            isinstance(ret, Instance) and ret.type.fullname == _COROUTINE and len(ret.args) == 3
        ):
            return None
        return ret.args[2]
    return sig.ret_type


def _check_handler(ctx: FunctionContext) -> Type:
    """The definition checks of one ``@handler`` method, as the runtime makes them when the
    actor class is first used (:class:`cinema.HandlerDefinitionError`), plus its reply type."""
    node = ctx.context
    if not isinstance(node, Decorator) or node.func.info is None or not node.func.name:
        return ctx.default_return_type
    func = node.func
    info = func.info
    if func.is_static or func.is_class or info.fullname == "":
        return ctx.default_return_type
    where = f"{info.name}.{func.name}"
    positional = [kind for kind in func.arg_kinds if kind.is_positional()]
    if len(positional) < 2:
        ctx.api.fail(
            f'Handler "{where}" must take (self, message, ctx); it takes no message parameter',
            func,
            code=CINEMA_HANDLER,
        )
        return ctx.default_return_type
    if len(positional) < 3 and ARG_STAR not in func.arg_kinds:
        ctx.api.fail(
            f'Handler "{where}" must take (self, message, ctx); it has no ctx parameter',
            func,
            code=CINEMA_HANDLER,
        )
    sig = get_proper_type(func.type)
    taken = get_proper_type(sig.arg_types[1]) if isinstance(sig, CallableType) else None
    if (
        not isinstance(sig, CallableType)
        or taken is None
        or (isinstance(taken, AnyType) and taken.type_of_any == TypeOfAny.unannotated)
    ):
        ctx.api.fail(
            f'Handler "{where}" has no type annotation on its message parameter: Cinema '
            "dispatches by that annotation",
            func,
            code=CINEMA_HANDLER,
        )
        return ctx.default_return_type
    items = list(_union_items(taken))
    for item in items:
        if isinstance(item, AnyType) and item.type_of_any != TypeOfAny.explicit:
            return ctx.default_return_type  # e.g. a name mypy reported as undefined
        if _runtime_class(item) is None:
            hint = " (annotate object to take every message)" if isinstance(item, AnyType) else ""
            ctx.api.fail(
                f'The message annotation of handler "{where}" must be a class or a union of '
                f'classes, not "{format_type_bare(item, ctx.api.options)}"{hint}',
                func,
                code=CINEMA_HANDLER,
            )
            return ctx.default_return_type
    ret = _handler_return(func, sig)
    if ret is not None:
        _check_reply(ctx, where, items, ret, func)
    _check_duplicates(ctx, info, func, where, items)
    if ret is not None:
        _check_replaced(ctx, info, func, where, items, ret)
    return ctx.default_return_type


def _runtime_class(typ: ProperType) -> str | None:
    """The class that the runtime dispatches on for one member of a message annotation, or
    ``None`` where the runtime refuses the annotation (a literal, a ``NewType``, a type
    variable, ``Any``)."""
    if isinstance(typ, Instance):
        return None if typ.type.is_newtype else typ.type.fullname
    if isinstance(typ, TupleType):
        return _runtime_class(typ.partial_fallback)
    if isinstance(typ, CallableType):
        return "collections.abc.Callable"
    if isinstance(typ, TypeType):
        return "builtins.type"
    if isinstance(typ, NoneType):
        return "builtins.None"
    if isinstance(typ, LiteralType | TypeVarLikeType | AnyType | UninhabitedType):
        return None
    fallback = getattr(typ, "fallback", None)
    return _runtime_class(fallback) if isinstance(fallback, Instance) else "?"


def _check_reply(
    ctx: FunctionContext, where: str, items: list[ProperType], ret: Type, func: FuncDef
) -> None:
    # A handler for a Message[R] must reply an R: the sender's ``await send(msg)`` is an R.
    for item in items:
        if not isinstance(item, Instance) or not item.type.has_base(_MESSAGE):
            continue
        base = next(b for b in item.type.mro if b.fullname == _MESSAGE)
        mapped = map_instance_to_supertype(item, base)
        if len(mapped.args) != 1:
            continue
        expected = mapped.args[0]
        # A Message[None] promises no reply: its sender cannot use one (mypy reports using the
        # value of a None call), so a handler may return anything for it, e.g. one handler for
        # Ping | Stop, a Message[int] and a Message[None], returning an int.
        if isinstance(get_proper_type(expected), NoneType):
            continue
        if not is_subtype(ret, expected):
            ctx.api.fail(
                f'Handler "{where}" returns "{format_type_bare(ret, ctx.api.options)}", but '
                f'"{format_type_bare(item, ctx.api.options)}" is a Message['
                f"{format_type_bare(expected, ctx.api.options)}]: its sender awaits a "
                f'"{format_type_bare(expected, ctx.api.options)}"',
                func,
                code=CINEMA_HANDLER,
            )


def _declared_keys(func: FuncDef) -> dict[str, ProperType] | None:
    """The runtime classes a handler method takes, with the annotation member for each."""
    sig = get_proper_type(func.type)
    if not isinstance(sig, CallableType) or sig.implicit or len(sig.arg_types) < 2:
        return None
    keys: dict[str, ProperType] = {}
    for item in _union_items(get_proper_type(sig.arg_types[1])):
        key = _runtime_class(item)
        if key is None:
            return None
        keys.setdefault(key, item)
    return keys


def _check_duplicates(
    ctx: FunctionContext, info: TypeInfo, func: FuncDef, where: str, items: list[ProperType]
) -> None:
    # Two handlers of one class for one type: which one runs would be an accident of
    # attribute order, so the runtime refuses the class. Reported at the later one.
    meta = info.metadata.get(_META)
    if meta is None:
        return
    mine = {_runtime_class(item): item for item in items}
    for name in meta.get("handlers", ()):
        other = _handler_func(info, name)
        if other is None or other is func or other.line >= func.line:
            continue
        keys = _declared_keys(other)
        for key, item in (keys or {}).items():
            if key in mine:
                ctx.api.fail(
                    f'Handlers "{info.name}.{name}" and "{where}" both handle '
                    f'"{format_type_bare(item, ctx.api.options)}": keep one',
                    func,
                    code=CINEMA_HANDLER,
                )
                return


def _check_replaced(
    ctx: FunctionContext,
    info: TypeInfo,
    func: FuncDef,
    where: str,
    items: list[ProperType],
    ret: Type,
) -> None:
    # A handler that takes over a class a base's handler (of another name) takes replaces it
    # at run time for every actor of this class: its reply must fit the base's, as an
    # override's return type must, or a typed ``send`` to an Addr[Base] would lie.
    mine = {_runtime_class(item) for item in items}
    for base in info.mro[1:]:
        meta = base.metadata.get(_META)
        if meta is None:
            continue
        for name in meta.get("handlers", ()):
            if name == func.name:
                continue
            other = _handler_func(base, name)
            if other is None:
                continue
            sig = get_proper_type(other.type)
            keys = _declared_keys(other)
            if not isinstance(sig, CallableType) or not keys:
                continue
            theirs = _handler_return(other, sig)
            if theirs is None:
                continue
            own = fill_typevars(info)
            if isinstance(own, Instance):
                theirs = expand_type_by_instance(theirs, map_instance_to_supertype(own, base))
            for key, item in keys.items():
                if key in mine and not is_subtype(ret, theirs):
                    ctx.api.fail(
                        f'Handler "{where}" replaces "{base.name}.{name}" for '
                        f'"{format_type_bare(item, ctx.api.options)}" but returns '
                        f'"{format_type_bare(ret, ctx.api.options)}", not '
                        f'"{format_type_bare(theirs, ctx.api.options)}"',
                        func,
                        code=CINEMA_HANDLER,
                    )
                    return


def _record_handlers(ctx: ClassDefContext) -> None:
    # Runs during semantic analysis, possibly several times per class: always overwrite.
    # Function signatures are not analyzed yet, so only the names are kept; their (cached)
    # signatures are read at type-checking time.
    names = [
        stmt.func.name
        for stmt in _class_statements(ctx.cls.defs)
        if isinstance(stmt, Decorator)
        and any(
            isinstance(dec, RefExpr) and dec.fullname == _HANDLER
            for dec in stmt.original_decorators
        )
    ]
    info = ctx.cls.info
    info.metadata[_META] = {"handlers": list(dict.fromkeys(names))}
    # The daemon (dmypy) re-checks code that uses a class when the class's snapshot changes,
    # and metadata is not part of it: adding or removing @handler would go unnoticed. Any
    # change to a member of the class fires its wildcard trigger; make that fire the class's.
    ctx.api.add_plugin_dependency(make_wildcard_trigger(info.fullname), make_trigger(info.fullname))


def _class_statements(block: Block) -> Iterator[Statement]:
    """The statements of a class body, also those under (reachable) ``if`` blocks."""
    if block.is_unreachable:
        return
    for stmt in block.body:
        if isinstance(stmt, IfStmt):
            for inner in [*stmt.body, *([stmt.else_body] if stmt.else_body else [])]:
                yield from _class_statements(inner)
        else:
            yield stmt


def _actor_types(receiver: ProperType, owner: str) -> list[Instance]:
    """The known actor classes behind ``Addr[A]`` / ``Context[A]`` (every member of a union)."""
    if not isinstance(receiver, Instance):
        return []
    owner_info = next((base for base in receiver.type.mro if base.fullname == owner), None)
    if owner_info is None:
        return []
    mapped = map_instance_to_supertype(receiver, owner_info)
    if len(mapped.args) != 1:
        return []
    actors = []
    for actor in _union_items(get_proper_type(mapped.args[0])):
        if isinstance(actor, TypeVarType) and actor.id.raw_id == 0:
            # ``Self`` inside an actor class: at least that class, so its handlers are known.
            actor = get_proper_type(actor.upper_bound)
        # Only classes the base-class hook analyzed: not ``Actor`` itself (the join of
        # different actors' addresses), nor classes local to a function.
        if isinstance(actor, Instance) and _META in actor.type.metadata:
            actors.append(actor)
    return actors


def _handled_types(actor: Instance) -> Iterator[Type]:
    """The message types ``actor`` handles; ``Any`` wherever that cannot be known."""
    # As at run time, the most derived definition of a name decides whether it is a handler:
    # overriding a handler without @handler removes it.
    seen: set[str] = set()
    for base in actor.type.mro:
        meta = base.metadata.get(_META)
        if meta is None:
            if _may_hold_handlers(base):
                yield AnyType(TypeOfAny.special_form)
        else:
            mapped = map_instance_to_supertype(actor, base)
            for name in meta.get("handlers", ()):
                if name not in seen:
                    yield _handler_message_type(base, name, mapped)
        seen.update(base.names)


def _may_hold_handlers(info: TypeInfo) -> bool:
    # A base the plugin did not analyze: Cinema's own classes and the standard library hold no
    # handlers; a non-actor mixin with decorated methods might, so the actor becomes unknown.
    module = info.module_name
    if module in _NEUTRAL_MODULES or module == "cinema" or module.startswith("cinema."):
        return False
    if info.has_base(_ACTOR):
        # An actor the base-class hook did not see (e.g. a class local to a function).
        return True
    return any(
        isinstance(sym.node, Decorator)
        and not sym.node.func.is_static
        and not sym.node.func.is_class
        and not sym.node.func.is_property
        and sym.node.func.abstract_status == NOT_ABSTRACT
        for sym in info.names.values()
    )


def _handler_message_type(base: TypeInfo, name: str, mapped: Instance) -> Type:
    sym = base.names.get(name)
    node = sym.node if sym is not None else None
    func = node.func if isinstance(node, Decorator) else node
    if not isinstance(func, FuncDef) or func.is_static or func.is_class:
        return AnyType(TypeOfAny.special_form)
    sig = get_proper_type(func.type)
    if not isinstance(sig, CallableType) or len(sig.arg_types) < 2:
        return AnyType(TypeOfAny.special_form)
    if not sig.arg_kinds[1].is_positional():
        return AnyType(TypeOfAny.special_form)
    # Put the actor's own type arguments into a generic actor's handler signature; type
    # variables of a generic handler method become Any.
    return erase_typevars(expand_type_by_instance(sig.arg_types[1], mapped))


def _report_unhandled(
    ctx: MethodContext, actor: Instance, message: Type, where: NodeContext
) -> None:
    handled = list(_handled_types(actor))
    for item in _union_items(get_proper_type(message)):
        if isinstance(item, AnyType | UninhabitedType | TypeVarLikeType):
            continue
        if not any(is_subtype(item, typ) for typ in handled):
            ctx.api.fail(
                f'Actor "{format_type_bare(actor, ctx.api.options)}" has no handler for '
                f'message type "{format_type_bare(item, ctx.api.options)}"',
                where,
                code=CINEMA_UNHANDLED,
            )


def _union_items(typ: ProperType) -> Iterator[ProperType]:
    if isinstance(typ, UnionType):
        for item in typ.items:
            yield from _union_items(get_proper_type(item))
    else:
        yield typ


def plugin(version: str) -> type[CinemaPlugin]:
    """The entry point mypy calls.

    :param version: mypy's version string (unused: one implementation serves every supported
        version).
    :return: the plugin class.
    """
    return CinemaPlugin
