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
from mypy.plugin import ClassDefContext, MethodContext, Plugin
from mypy.server.trigger import make_trigger, make_wildcard_trigger
from mypy.subtypes import is_subtype
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    ProperType,
    Type,
    TypeOfAny,
    TypeVarLikeType,
    TypeVarType,
    UninhabitedType,
    UnionType,
    get_proper_type,
)
from mypy.typevars import fill_typevars_with_any

__all__ = ["CINEMA_UNHANDLED", "CinemaPlugin", "plugin"]

#: The error code of every report; disable it with ``disable_error_code = ["cinema-unhandled"]``
#: or per line with ``# type: ignore[cinema-unhandled]``.
CINEMA_UNHANDLED: Final = ErrorCode(
    "cinema-unhandled", "Check that the target actor has a handler for the message", "Cinema"
)

_ACTOR: Final = "cinema._actor.Actor"
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
    f"{_CONTEXT}.run_later": 1,
    f"{_CONTEXT}.run_interval": 1,
}
_WATCH: Final = f"{_CONTEXT}.watch"
_ADD_STREAM: Final = f"{_CONTEXT}.add_stream"
_STREAM_HANDLER: Final = "cinema._actor.StreamHandler"
# Bases that never carry handlers, so an actor inheriting them is still fully known.
_NEUTRAL_MODULES: Final = frozenset(
    {"builtins", "typing", "typing_extensions", "abc", "collections.abc"}
)


class CinemaPlugin(Plugin):
    """Checks that messages sent to an actor have a handler there (error code
    ``cinema-unhandled``)."""

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        """Record the handlers of every class that derives from ``Actor``."""
        if fullname == _ACTOR:
            return _record_handlers
        sym = self.lookup_fully_qualified(fullname)
        if sym is not None and isinstance(sym.node, TypeInfo) and sym.node.has_base(_ACTOR):
            return _record_handlers
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        """Check the message argument of ``send``, ``do_send``, ``run_later``,
        ``run_interval`` and the watcher of ``watch``."""
        if fullname in _MESSAGE_ARG:
            index = _MESSAGE_ARG[fullname]
            owner = _ADDR if fullname.startswith(_ADDR + ".") else _CONTEXT
            return lambda ctx: self._check_message(ctx, owner, index)
        if fullname == _WATCH:
            return self._check_watch
        if fullname == _ADD_STREAM:
            return self._check_stream
        return None

    def _check_message(self, ctx: MethodContext, owner: str, index: int) -> Type:
        # One plain argument only: a message unpacked from *args or **kwargs is not checked.
        if index >= len(ctx.arg_types) or len(ctx.arg_types[index]) != 1:
            return ctx.default_return_type
        if ctx.arg_kinds[index][0] in (ARG_STAR, ARG_STAR2):
            return ctx.default_return_type
        for actor in _actor_types(ctx.type, owner):
            _report_unhandled(ctx, actor, ctx.arg_types[index][0], ctx.args[index][0])
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
