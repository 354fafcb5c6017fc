"""Server-side routing: from a received envelope to a local actor, and the reply back."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Self, final

from google.protobuf.message import Message as ProtoMessage

from cinema._addr import Addr
from cinema._errors import ActorFailed, ActorStopped, UnhandledMessage

from ._errors import PayloadDecodeError, RemoteHandlerError, UnknownActor, UnknownMessageType
from ._protobuf import ProtobufSerializer, find_message_class, type_name_of
from .proto import wire_pb2 as pb

__all__ = ["ActorHandler", "LocalNode", "MessageRouter", "RemoteHandler", "Router"]

log = logging.getLogger("cinema.remote")

_SERIALIZER = ProtobufSerializer()


class RemoteHandler(ABC):
    """What a :class:`RemoteServer` hands each request envelope to.

    :meth:`handle` returns the reply envelope (``None`` for one-way messages) or raises one of
    the ``cinema.remote`` errors (or ``cinema.ActorStopped``), which the server turns into an
    error reply of the matching kind.
    """

    @abstractmethod
    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        """Handle one request or one-way envelope."""


def _decode(envelope: pb.Envelope, cls: type[ProtoMessage]) -> ProtoMessage:
    if envelope.serializer not in ("", _SERIALIZER.name):
        raise UnknownMessageType(f"unsupported serializer {envelope.serializer!r}")
    try:
        return _SERIALIZER.decode(envelope.payload, cls)
    except ValueError as exc:
        raise PayloadDecodeError(str(exc)) from exc


def encode_reply(request: pb.Envelope, reply: object) -> pb.Envelope:
    """The REPLY envelope carrying a handler's return value (``None``: no value)."""
    envelope = pb.Envelope(
        kind=pb.ENVELOPE_KIND_REPLY,
        correlation_id=request.correlation_id,
        target_node=request.target_node,
        actor_name=request.actor_name,
    )
    if reply is None:
        return envelope
    if not isinstance(reply, ProtoMessage):
        raise RemoteHandlerError(
            "TypeError",
            f"the handler for {request.message_type} returned a {type(reply).__qualname__},"
            " which is not a protobuf message",
        )
    envelope.message_type = type_name_of(type(reply))
    envelope.payload = _SERIALIZER.encode(reply)
    return envelope


async def deliver(
    addr: Addr[Any], message: ProtoMessage, request: pb.Envelope
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
    except ActorStopped:
        raise
    return encode_reply(request, reply)


@final
class LocalNode:
    """This process's identity on the network, and the actors it serves to remote peers.

    :param name: the node name clients address (``client.remote_addr(T, name, actor)``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._exposed: dict[str, Addr[Any]] = {}

    def handler(self, addr: Addr[Any], message_type: type[ProtoMessage]) -> ActorHandler:
        """A handler that delivers messages of ``message_type`` to the actor at ``addr``.

        Give it to :class:`RemoteServer` directly or combine several with
        :class:`MessageRouter`.
        """
        return ActorHandler(self, addr, message_type)

    def expose(self, name: str, addr: Addr[Any]) -> None:
        """Serve the actor at ``addr`` under ``name``: requests naming it go to it whatever
        their type (so two actors can handle the same type). Exposing a name again replaces it.
        """
        self._exposed[name] = addr

    def unexpose(self, name: str) -> bool:
        """Stop serving ``name``. :returns: whether it was exposed."""
        return self._exposed.pop(name, None) is not None

    @property
    def exposed(self) -> Mapping[str, Addr[Any]]:
        """The exposed actors by name (read-only view)."""
        return MappingProxyType(self._exposed)

    def __repr__(self) -> str:
        return f"LocalNode({self.name!r})"


@final
class ActorHandler(RemoteHandler):
    """Delivers one message type to one actor (made by :meth:`LocalNode.handler`)."""

    def __init__(self, node: LocalNode, addr: Addr[Any], message_type: type[ProtoMessage]) -> None:
        if not _SERIALIZER.handles(message_type):
            raise TypeError(f"{message_type!r} is not a protobuf message class")
        self.node = node
        self.addr = addr
        self.message_type = message_type
        self.type_name = _SERIALIZER.type_name(message_type)
        # Served alone (without a MessageRouter), it routes like a router of one type.
        self._router = Router(node, {self.type_name: self})

    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        return await self._router.handle(envelope)

    async def deliver(self, envelope: pb.Envelope) -> pb.Envelope | None:
        """Decode and deliver, without any routing checks."""
        return await deliver(self.addr, _decode(envelope, self.message_type), envelope)

    def __repr__(self) -> str:
        return f"<ActorHandler {self.type_name} -> {self.addr!r}>"


@final
class Router(RemoteHandler):
    """Routes envelopes by actor name (exposed on the node), then by message type."""

    def __init__(self, node: LocalNode | None, routes: Mapping[str, ActorHandler]) -> None:
        self.node = node
        self._routes = dict(routes)

    @property
    def routes(self) -> Mapping[str, ActorHandler]:
        """The type routes by full protobuf type name."""
        return MappingProxyType(self._routes)

    def _resolve_type(self, type_name: str) -> type[ProtoMessage]:
        route = self._routes.get(type_name)
        if route is not None:
            return route.message_type
        cls = find_message_class(type_name)
        if cls is None:
            raise UnknownMessageType(f"unknown message type {type_name!r}")
        return cls

    async def handle(self, envelope: pb.Envelope) -> pb.Envelope | None:
        node = self.node
        if node is not None and envelope.target_node and envelope.target_node != node.name:
            raise UnknownActor(
                f"node {envelope.target_node!r} is not served here (this is {node.name!r})"
            )
        if node is not None and envelope.actor_name:
            addr = node.exposed.get(envelope.actor_name)
            if addr is not None:
                cls = self._resolve_type(envelope.message_type)
                return await deliver(addr, _decode(envelope, cls), envelope)
        route = self._routes.get(envelope.message_type)
        if route is not None:
            return await route.deliver(envelope)
        # Say what is actually wrong: a type nobody here knows, or a known type sent to a name
        # that is not exposed and has no route.
        self._resolve_type(envelope.message_type)
        if envelope.actor_name:
            raise UnknownActor(
                f"no actor named {envelope.actor_name!r} and no route for {envelope.message_type!r}"
            )
        raise UnknownMessageType(f"no route for message type {envelope.message_type!r}")

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

    def route(self, message_type: type[ProtoMessage], handler: ActorHandler) -> Self:
        """Send messages of ``message_type`` to ``handler``.

        :raises ValueError: the type is routed already, or the handler is for another type, or
            handlers of different nodes are mixed.
        """
        name = _SERIALIZER.type_name(message_type)
        if handler.message_type is not message_type:
            raise ValueError(f"handler for {handler.type_name} cannot serve {name}")
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
