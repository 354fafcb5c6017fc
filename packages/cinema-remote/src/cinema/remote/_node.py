"""Server-side routing: from a received envelope to a local actor, and the reply back."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Self, final

from google.protobuf.message import Message as ProtoMessage

from cinema import ActorFailed, ActorStopped, Addr, PluginRegistry, ReplyError, UnhandledMessage
from cinema.abc import Serializer
from cinema.lowlevel import actor_class, handled_types, reply_error_name

from ._codec import decode_payload, encode_payload, payload_type_name
from ._errors import (
    RemoteHandlerError,
    RemoteReplyError,
    UnknownActor,
    UnknownMessageType,
    UnknownSerializer,
)
from ._peerlog import clip
from ._protobuf import find_message_class
from ._serializers import PROTOBUF, SerializerChoice, Serializers, wire_name
from .proto import wire_pb2 as pb

__all__ = ["ActorHandler", "LocalNode", "MessageRouter", "RemoteHandler", "Router"]

log = logging.getLogger("cinema.remote")


class RemoteHandler(ABC):
    """What a :class:`RemoteServer` hands each request envelope to.

    :meth:`handle` returns the reply envelope (``None`` for one-way messages) or raises one of
    the ``cinema.remote`` errors (or ``cinema.ActorStopped``), which the server turns into an
    error reply of the matching kind.
    """

    @abstractmethod
    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        """Handle one request or one-way envelope."""


def encode_reply(
    request: pb.Envelope, reply: object, serializer: Serializer, serializers: Serializers
) -> pb.Envelope:
    """The REPLY envelope carrying a handler's return value (``None``: no value).

    The reply uses the request's serializer when it handles the reply's class, else the one
    ``serializers`` picks for that class.
    """
    envelope = pb.Envelope(
        kind=pb.ENVELOPE_KIND_REPLY,
        correlation_id=request.correlation_id,
        target_node=request.target_node,
        actor_name=request.actor_name,
    )
    if reply is None:
        return envelope
    cls = type(reply)
    if isinstance(reply, ProtoMessage) and (serializer is PROTOBUF or not serializer.handles(cls)):
        # The common case, without the generic lookups (this runs for every reply).
        envelope.message_type = payload_type_name(PROTOBUF, cls)
        envelope.payload = encode_payload(PROTOBUF, reply)
        return envelope
    if not serializer.handles(cls):
        try:
            serializer = serializers.for_class(cls)
        except UnknownSerializer as exc:
            raise RemoteHandlerError(
                "TypeError",
                f"the handler for {clip(request.message_type)} returned a {cls.__qualname__},"
                f" which no serializer handles (not a protobuf message): {exc}",
            ) from exc
    envelope.message_type = payload_type_name(serializer, cls)
    try:
        envelope.payload = encode_payload(serializer, reply)
    except TypeError as exc:
        raise RemoteHandlerError(
            "TypeError",
            f"the handler for {clip(request.message_type)} returned a {cls.__qualname__}"
            f" that {serializer.name} cannot encode: {exc}",
        ) from exc
    envelope.serializer = wire_name(serializer)
    return envelope


async def deliver(
    addr: Addr[Any],
    message: object,
    request: pb.Envelope,
    serializer: Serializer,
    serializers: Serializers,
) -> pb.Envelope | None:
    """Hand ``message`` to a local actor; translate its outcome into a reply or an error."""
    try:
        if request.kind == pb.ENVELOPE_KIND_ONEWAY:
            addr.do_send(message)
            return None
        reply = await addr.send(message)
    except UnhandledMessage as exc:
        raise UnknownMessageType(str(exc)) from exc
    except ActorFailed as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise RemoteHandlerError(type(cause).__qualname__, str(cause)) from exc
    except ReplyError as exc:
        # The handler's answer: the actor goes on, the caller gets the same type back.
        raise RemoteReplyError(reply_error_name(exc), str(exc)) from exc
    except ActorStopped:
        raise
    return encode_reply(request, reply, serializer, serializers)


@final
class LocalNode(RemoteHandler):
    """This process's identity on the network, and the actors it serves to remote peers.

    The short form serves whole actors by name, and is itself the server's handler::

        node = LocalNode("shop")
        node.serve("cart", cart_addr)        # every message type Cart's handlers take
        server = await RemoteServer.bind("127.0.0.1:8080", node)

    A request naming an actor the node does not serve raises :class:`UnknownActor` for the
    caller. Requests that name no actor (an empty ``actor_name``) are routed by message type.

    :param name: the node name clients address (``client.remote_addr(T, name, actor)``).
    :param plugins: where serializers are found, by the name a message carries and by message
        class; by default the installed plugins (:func:`cinema.load_plugins`).
    :param route_by_type: also route a request for a name that is not served (nor exposed) by
        its message type, as the seed did: to the route a :class:`MessageRouter` or
        :meth:`handler` made for it, or (when the node itself is the handler) to the first
        served actor that handles it. Off by default, so that a mistyped name is an error
        rather than a message delivered to whichever actor takes its type.
    """

    def __init__(
        self, name: str, *, plugins: PluginRegistry | None = None, route_by_type: bool = False
    ) -> None:
        self.name = name
        self.route_by_type = route_by_type
        self._exposed: dict[str, Addr[Any]] = {}
        # name -> the actor's type routes (by wire type name), for names given to serve().
        self._served: dict[str, dict[str, ActorHandler]] = {}
        self.serializers = Serializers(plugins)
        # Every class a handler of this node was made for, by wire type name: how a message
        # for an exposed actor is decoded when no route names its type (only protobuf can
        # find a class by name by itself).
        self._types: dict[str, type] = {}
        # The node as a handler: its type routes are those of the served actors (first wins).
        self._router = Router(self, {})

    def handler(
        self, addr: Addr[Any], message_type: type, *, serializer: SerializerChoice = None
    ) -> ActorHandler:
        """A handler that delivers messages of ``message_type`` to the actor at ``addr``.

        Give it to :class:`RemoteServer` directly or combine several with
        :class:`MessageRouter`.

        :param serializer: the serializer that names ``message_type`` on the wire (instance or
            registered name); by default the one whose ``handles()`` accepts it (protobuf for
            protobuf classes). Requests are decoded with whichever serializer they name.
        :raises UnknownSerializer: no serializer handles ``message_type``.
        """
        return ActorHandler(self, addr, message_type, serializer=serializer)

    def serve(self, name: str, addr: Addr[Any], *, types: Iterable[type] = ()) -> None:
        """Serve the actor at ``addr`` under ``name``, with every message type it handles.

        The types are the classes its ``@handler`` methods take, each with the serializer that
        handles it (protobuf classes, dataclasses, ...); classes no serializer handles, and
        Cinema's own messages (:class:`cinema.Terminated`, the cluster's membership events),
        which only the runtime sends, are left out. Only
        these classes (and ``types``) are ever decoded for ``name``. Serving a name again
        replaces it.

        :param types: more classes to accept, e.g. subclasses of a base class a handler takes
            (a handler for ``Shape`` serves ``Circle``, but only a class named here or in a
            handler's annotation is decoded from the network).
        :raises ValueError: the actor handles none of ``types``, or two of its classes have the
            same wire name (give one a ``__wire_name__``).
        :raises UnknownSerializer: no serializer handles one of ``types``.
        """
        cls = actor_class(addr)
        routes: dict[str, ActorHandler] = {}
        for message_type in handled_types(cls):
            if _is_cinemas(message_type):
                # Cinema's own messages (Terminated, cluster membership events) come from the
                # runtime, never from a peer: only types= can make one remote.
                continue
            try:
                self.serializers.for_class(message_type)
            except UnknownSerializer:
                continue  # local-only: nothing can send it from outside
            self._add_route(routes, ActorHandler(self, addr, message_type), cls)
        for message_type in types:
            if not any(issubclass(message_type, t) for t in handled_types(cls)):
                raise ValueError(f"{cls.__qualname__} has no handler for {message_type!r}")
            self._add_route(routes, ActorHandler(self, addr, message_type), cls)
        self._served[name] = routes
        self._exposed.pop(name, None)
        self._router = Router(self, self._type_routes())

    @staticmethod
    def _add_route(routes: dict[str, ActorHandler], route: ActorHandler, cls: type) -> None:
        other = routes.get(route.type_name)
        if other is not None and other.message_type is not route.message_type:
            raise ValueError(
                f"{cls.__qualname__} handles {other.message_type!r} and {route.message_type!r},"
                f" both named {route.type_name!r} on the wire: give one a __wire_name__"
            )
        routes[route.type_name] = route

    def _type_routes(self) -> dict[str, ActorHandler]:
        merged: dict[str, ActorHandler] = {}
        for routes in self._served.values():
            for type_name, route in routes.items():
                merged.setdefault(type_name, route)
        return merged

    def expose(self, name: str, addr: Addr[Any]) -> None:
        """Serve the actor at ``addr`` under ``name`` for the routes of this node's handlers:
        requests naming it go to it whatever their type (so two actors can handle the same
        type). Exposing a name again replaces it (as does :meth:`serve`).
        """
        self._exposed[name] = addr
        if self._served.pop(name, None) is not None:
            self._router = Router(self, self._type_routes())

    def unexpose(self, name: str) -> bool:
        """Stop serving ``name`` (exposed or served). :returns: whether it was served."""
        served = self._served.pop(name, None) is not None
        if served:
            self._router = Router(self, self._type_routes())
        return self._exposed.pop(name, None) is not None or served

    @property
    def exposed(self) -> Mapping[str, Addr[Any]]:
        """The exposed and served actors by name (read-only view)."""
        found = dict(self._exposed)
        for name, routes in self._served.items():
            route = next(iter(routes.values()), None)
            if route is not None:
                found[name] = route.addr
        return MappingProxyType(found)

    def served_types(self, name: str) -> Mapping[str, type]:
        """The message classes accepted for a name given to :meth:`serve`, by wire name
        (empty for other names)."""
        return MappingProxyType(
            {
                type_name: route.message_type
                for type_name, route in self._served.get(name, {}).items()
            }
        )

    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        return await self._router.handle(envelope)

    def __repr__(self) -> str:
        return f"LocalNode({self.name!r})"


def _is_cinemas(cls: type) -> bool:
    module = cls.__module__
    return module == "cinema" or module.startswith("cinema.")


@final
class ActorHandler(RemoteHandler):
    """Delivers one message type to one actor (made by :meth:`LocalNode.handler`)."""

    def __init__(
        self,
        node: LocalNode,
        addr: Addr[Any],
        message_type: type,
        *,
        serializer: SerializerChoice = None,
    ) -> None:
        if not isinstance(message_type, type):
            raise TypeError(f"{message_type!r} is not a message class")
        self.node = node
        self.addr = addr
        self.message_type = message_type
        self.serializer = node.serializers.for_class(message_type, serializer)
        self.type_name = self.serializer.type_name(message_type)
        node._types.setdefault(self.type_name, message_type)
        # Protobuf requests for a protobuf type decode without the generic lookups.
        self._protobuf: type[ProtoMessage] | None = None
        if self.serializer is PROTOBUF and issubclass(message_type, ProtoMessage):
            self._protobuf = message_type
        # Served alone (without a MessageRouter), it routes like a router of one type.
        self._router = Router(node, {self.type_name: self})

    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        return await self._router.handle(envelope)

    async def deliver(self, envelope: pb.Envelope) -> pb.Envelope | None:
        """Decode (with the serializer the envelope names) and deliver, without any routing
        checks."""
        serializers = self.node.serializers
        protobuf = self._protobuf
        if protobuf is not None and not envelope.serializer:
            request = decode_payload(PROTOBUF, envelope.payload, protobuf)
            return await deliver(self.addr, request, envelope, PROTOBUF, serializers)
        serializer = serializers.named(envelope.serializer)
        cls = self.message_type
        if serializer is not self.serializer and not serializer.handles(cls):
            raise UnknownMessageType(
                f"serializer {serializer.name!r} does not handle {clip(envelope.message_type)}"
            )
        message: object = decode_payload(serializer, envelope.payload, cls)
        return await deliver(self.addr, message, envelope, serializer, serializers)

    def __repr__(self) -> str:
        return f"<ActorHandler {self.type_name} -> {self.addr!r}>"


@final
class Router(RemoteHandler):
    """Routes envelopes by actor name (served or exposed on the node), then by message type.

    A name the node neither serves nor exposes is an :class:`UnknownActor` unless the node
    was made with ``route_by_type=True``; an envelope without a name routes by type.
    """

    def __init__(self, node: LocalNode | None, routes: Mapping[str, ActorHandler]) -> None:
        self.node = node
        self._routes = dict(routes)
        self._serializers = node.serializers if node is not None else Serializers()

    @property
    def routes(self) -> Mapping[str, ActorHandler]:
        """The type routes by wire type name (the full name for protobuf types)."""
        return MappingProxyType(self._routes)

    def _resolve_type(self, type_name: str, serializer: Serializer) -> type:
        route = self._routes.get(type_name)
        cls: type | None = route.message_type if route is not None else None
        if cls is None and self.node is not None:
            cls = self.node._types.get(type_name)
        if cls is None and serializer is PROTOBUF:
            cls = find_message_class(type_name)
        if cls is None:
            raise UnknownMessageType(f"unknown message type {clip(type_name)!r}")
        if not serializer.handles(cls):
            raise UnknownMessageType(
                f"serializer {serializer.name!r} does not handle {clip(type_name)!r}"
            )
        return cls

    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        node = self.node
        if node is not None and envelope.target_node and envelope.target_node != node.name:
            raise UnknownActor(
                f"node {clip(envelope.target_node)!r} is not served here (this is {node.name!r})"
            )
        name = envelope.actor_name
        if node is not None and name:
            served = node._served.get(name)
            if served is not None:
                # Only the classes the actor handles are decoded for it.
                found = served.get(envelope.message_type)
                if found is None:
                    raise UnknownMessageType(
                        f"actor {clip(name)!r} does not handle {clip(envelope.message_type)!r}"
                    )
                return await found.deliver(envelope)
            addr = node._exposed.get(name)
            if addr is not None:
                serializers = self._serializers
                serializer = serializers.named(envelope.serializer)
                cls = self._resolve_type(envelope.message_type, serializer)
                message: object = decode_payload(serializer, envelope.payload, cls)
                return await deliver(addr, message, envelope, serializer, serializers)
            if not node.route_by_type:
                raise UnknownActor(
                    f"no actor named {clip(name)!r} is served on node {node.name!r}"
                    " (LocalNode(route_by_type=True) routes unknown names by message type)"
                )
        route = self._routes.get(envelope.message_type)
        if route is not None:
            return await route.deliver(envelope)
        # Say what is actually wrong: an unknown serializer, a type nobody here knows, or a
        # known type sent to a name that is not exposed and has no route.
        self._resolve_type(envelope.message_type, self._serializers.named(envelope.serializer))
        if envelope.actor_name:
            raise UnknownActor(
                f"no actor named {clip(envelope.actor_name)!r}"
                f" and no route for {clip(envelope.message_type)!r}"
            )
        raise UnknownMessageType(f"no route for message type {clip(envelope.message_type)!r}")

    def __repr__(self) -> str:
        return f"<Router node={self.node!r} types={sorted(self._routes)}>"


@final
class MessageRouter:
    """Builds a :class:`Router` that serves several message types::

        handler = (MessageRouter()
                   .route(Add, node.handler(calc, Add))
                   .route(GetValue, node.handler(calc, GetValue))
                   .build())

    :param node: the node whose exposed names the router serves; by default the node of the
        routed handlers.
    """

    def __init__(self, node: LocalNode | None = None) -> None:
        self._node = node
        self._routes: dict[str, ActorHandler] = {}

    def route(self, message_type: type, handler: ActorHandler) -> Self:
        """Send messages of ``message_type`` to ``handler``.

        Routes are keyed by the type's wire name (from the handler's serializer), so type names
        are one namespace per router whatever serializer names them.

        :raises ValueError: the type is routed already, or the handler is for another type, or
            handlers of different nodes are mixed.
        """
        if handler.message_type is not message_type:
            raise ValueError(
                f"handler for {handler.type_name} cannot serve {message_type.__qualname__}"
            )
        name = handler.type_name
        if name in self._routes:
            raise ValueError(f"{name} is routed already")
        if self._node is None:
            self._node = handler.node
        elif handler.node is not self._node:
            raise ValueError("all handlers of a router must belong to the same LocalNode")
        self._routes[name] = handler
        return self

    def build(self) -> Router:
        """The finished router (the builder can go on being used; later routes do not leak)."""
        return Router(self._node, self._routes)


for _cls in (RemoteHandler, LocalNode, ActorHandler, Router, MessageRouter):
    _cls.__module__ = "cinema.remote"
