"""The client side: many requests in flight on one connection, matched by correlation id."""

from __future__ import annotations

import dataclasses
import hmac
import os
from collections.abc import Callable
from types import TracebackType, UnionType
from typing import Any, Generic, Self, TypeVar, Union, final, get_args, get_origin, overload

import anyio
import msgspec
from google.protobuf.message import Message as ProtoMessage

from cinema import Actor, Message, PluginRegistry
from cinema.abc import Connection, Serializer
from cinema.lowlevel import Backend, Future

from ._asyncio_streams import AsyncioStreamConnection
from ._codec import decode_payload, encode_payload, payload_type_name
from ._errors import (
    AuthenticationError,
    ConnectionLost,
    FrameTooLarge,
    PayloadDecodeError,
    ProtocolError,
)
from ._framing import DEFAULT_MAX_FRAME_SIZE, StreamConnection
from ._msgspec import MsgspecSerializer
from ._peerlog import ConnectionLog, clip
from ._protobuf import find_message_class, type_name_of
from ._reply import NO_REPLY_TYPE, reply_type
from ._rpc import Req, Resp, Rpc
from ._serializers import PROTOBUF, SerializerChoice, Serializers
from ._wire import (
    NONCE_SIZE,
    PROTOCOL_VERSION,
    body_frame,
    client_proof,
    error_from_wire,
    parse_frame,
    server_proof,
)
from .proto import wire_pb2 as pb

__all__ = ["RemoteAddr", "RemoteClient", "decode_typed_reply"]


A_co = TypeVar("A_co", bound=Actor, covariant=True)
R = TypeVar("R")

# Errors from a transport that mean the connection is unusable.
_BROKEN = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
    ProtocolError,
)


class _Pending:
    """One request in flight: where its reply lands, and how its waiter is woken."""

    __slots__ = ("error", "reply", "wake")

    def __init__(self) -> None:
        self.reply: pb.Frame | None = None
        self.error: BaseException | None = None
        # Set while its caller waits for another task to read the reply (made lazily: the
        # caller that reads for itself never needs one). A bare backend future: an anyio
        # Event costs several times more, and one is needed for nearly every pipelined call.
        self.wake: Future | None = None

    def done(self) -> bool:
        return self.reply is not None or self.error is not None

    def set_wake(self) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)


def _as_secret(secret: bytes | str | None) -> bytes | None:
    return secret.encode() if isinstance(secret, str) else secret


@final
class RemoteClient:
    """A client for one connection to a :class:`RemoteServer`.

    Usable as soon as it is constructed: the version (and optional shared-secret) handshake runs
    on the first request. Requests from many tasks share the connection; replies are matched by
    correlation id, so they may complete in any order. There is no background task: whichever
    caller is waiting reads frames for everyone, so the client needs no task group.

    :param conn: a connection from a transport, e.g. ``await TcpTransport().connect(...)``.
    :param secret: the shared secret, if the server requires one (bytes or str). With a
        secret, the client also checks that the server knows it.
    :param node: this side's node name, sent in the handshake (for the server's logs).
    :param handshake_timeout: how long the handshake may take at most. It runs within the
        first caller's deadline too (``timeout=`` or an enclosing cancel scope); a handshake
        cut short by either leaves the connection closed (``ConnectionLost`` for every call).
    :param serializer: the serializer (instance or registered name) for every message it
        handles; others get the one whose ``handles()`` accepts their class (protobuf first).
    :param plugins: where serializers are found by class and by the name a reply carries; by
        default the installed plugins (:func:`cinema.load_plugins`).
    :param max_frame_size: the largest frame sent or received (as the server's option of that
        name): a larger request raises :class:`FrameTooLarge` (the connection stays usable), a
        larger reply ends the connection.
    :raises UnknownSerializer: ``serializer`` names no registered serializer.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        secret: bytes | str | None = None,
        node: str = "",
        handshake_timeout: float = 10.0,
        serializer: SerializerChoice = None,
        plugins: PluginRegistry | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._serializers = Serializers(plugins, serializer)
        self._conn = conn
        # What the server sends reaches the log rate-limited (a hostile one could flood it).
        self._log = ConnectionLog(conn.remote_address)
        self._max_frame_size = max_frame_size
        if isinstance(conn, StreamConnection | AsyncioStreamConnection):
            conn.max_frame_size = max_frame_size
        self._handshake_timeout = handshake_timeout
        self._secret = _as_secret(secret)
        self._node = node
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._reading = False
        self._backend: Backend | None = None  # bound to the event loop at the handshake
        # The connection's receive_frame_nowait() if it has one: a reader then dispatches the
        # replies that arrived together without a coroutine per frame, and before it returns
        # (saving another caller a turn as reader).
        self._nowait: Callable[[], bytes | None] = conn.receive_frame_nowait
        self._send_nowait: Callable[[bytes], bool] = conn.send_frame_nowait
        self._ready = False
        self._handshake_lock = anyio.Lock()
        # Handshake progress, kept across callers cancelled part-way (see _ensure_ready).
        self._handshake_deadline: float | None = None
        self._client_nonce = os.urandom(NONCE_SIZE)
        self._hello_sent = False
        self._welcome: pb.Welcome | None = None
        self._error: ConnectionLost | None = None
        self.server_node = ""

    # -- public API --------------------------------------------------------------------------

    def remote_addr(
        self,
        actor_type: type[A_co],
        node: str,
        actor_name: str,
        *,
        serializer: SerializerChoice = None,
    ) -> RemoteAddr[A_co]:
        """The address of actor ``actor_name`` on node ``node`` behind this connection.

        :param actor_type: the remote actor's class (for typing and reprs only).
        :param serializer: encode every message sent through this address with this serializer
            (instance or registered name) instead of choosing by message class.
        :raises UnknownSerializer: ``serializer`` names no registered serializer.
        """
        chosen = self._serializers.resolve(serializer) if serializer is not None else None
        return RemoteAddr(self, actor_type, node, actor_name, chosen)

    @property
    def is_closed(self) -> bool:
        """Whether the connection is closed or lost."""
        return self._error is not None

    async def request_extension(
        self,
        kind: str,
        data: bytes,
        *,
        timeout: float | None = None,  # per-call timeout, as in Addr.send
    ) -> bytes:
        """Send a protocol-extension request (e.g. cluster gossip) and return the reply's data.

        :raises UnknownExtension: the server has no handler for ``kind``.
        :raises RemoteHandlerError: the server's extension handler raised.
        """
        request = pb.Extension(kind=kind, envelope_kind=pb.ENVELOPE_KIND_REQUEST, data=data)
        reply = await self._request_body(request, timeout)
        ext = reply.extension
        if ext.HasField("error"):
            raise error_from_wire(ext.error, envelope=False)
        return ext.data

    async def send_extension(self, kind: str, data: bytes) -> None:
        """Send a one-way protocol-extension frame; return once written."""
        await self._send_oneway(
            body_frame(pb.Extension(kind=kind, envelope_kind=pb.ENVELOPE_KIND_ONEWAY, data=data))
        )

    async def aclose(self) -> None:
        """Close the connection. Requests in flight fail with :class:`ConnectionLost`."""
        self._fail(ConnectionLost("the client was closed"))
        await self._conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._error else "open"
        return f"<RemoteClient {self._conn.remote_address} {state}, {len(self._pending)} pending>"

    # -- internals ---------------------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise ConnectionLost(str(self._error)) from self._error

    def _fail(self, error: ConnectionLost) -> None:
        if self._error is None:
            self._error = error
        for pending in self._pending.values():
            if pending.reply is None and pending.error is None:
                pending.error = error
                pending.set_wake()

    async def _write(self, data: bytes) -> None:
        """Send one serialized ``Frame``."""
        try:
            if not self._send_nowait(data):
                await self._conn.send_frame(data)
        except _BROKEN as exc:
            self._fail(ConnectionLost(f"connection to {self._conn.remote_address} lost: {exc!r}"))
            self._check()

    def _write_nowait(self, data: bytes) -> bool:
        """Send one serialized ``Frame`` without awaiting if the connection can.

        :returns: whether it was sent; if not, ``await _write(data)``.
        """
        try:
            return self._send_nowait(data)
        except _BROKEN as exc:
            self._fail(ConnectionLost(f"connection to {self._conn.remote_address} lost: {exc!r}"))
            self._check()
            raise  # unreachable: _check raises

    async def _read(self) -> pb.Frame:
        try:
            return parse_frame(await self._conn.receive_frame())
        except _BROKEN as exc:
            error = ConnectionLost(f"connection to {self._conn.remote_address} lost: {exc!r}")
            self._fail(error)
            raise (self._error or error) from exc

    async def _ensure_ready(self) -> None:
        if self._ready:
            self._check()
            return
        async with self._handshake_lock:
            await self._ensure_ready_locked()

    async def _ensure_ready_locked(self) -> None:
        self._check()
        if self._ready:
            return
        if self._handshake_deadline is None:
            self._handshake_deadline = anyio.current_time() + self._handshake_timeout
            self._backend = Backend()
        try:
            # The caller's deadline (timeout=, an enclosing scope) applies: a server that
            # accepts and never answers costs no caller more than it allows. A caller
            # cancelled part-way leaves the handshake where it was, and the next caller goes
            # on from there (frames are written whole, reads are cancel-safe); the handshake
            # as a whole has its own time limit.
            with anyio.CancelScope(deadline=self._handshake_deadline) as scope:
                await self._handshake()
            if scope.cancelled_caught:
                raise TimeoutError(f"no handshake within {self._handshake_timeout} s")
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException:
            # A failed handshake leaves the connection in an unknown state: nobody may use
            # it after this.
            self._fail(ConnectionLost("the handshake did not complete"))
            with anyio.CancelScope(shield=True):
                await self._conn.aclose()
            raise
        self._ready = True

    async def _handshake(self) -> None:
        """The handshake's remaining steps (each done at most once, see _ensure_ready)."""
        nonce = self._client_nonce
        if not self._hello_sent:
            hello = pb.Hello(protocol_version=PROTOCOL_VERSION, node=self._node, client_nonce=nonce)
            await self._write(pb.Frame(hello=hello).SerializeToString())
            self._hello_sent = True
        welcome = self._welcome
        if welcome is None:
            welcome = await self._read_welcome()
            self._welcome = welcome
        if self._secret is not None:
            proof = client_proof(self._secret, welcome.server_nonce, nonce)
            await self._write(pb.Frame(auth=pb.Auth(client_proof=proof)).SerializeToString())

    async def _read_welcome(self) -> pb.Welcome:
        frame = await self._read()
        body = frame.WhichOneof("body")
        if body == "close":
            self._fail_closed(frame.close)
            self._check()
        if body != "welcome":
            await self._abort(ProtocolError(f"expected a welcome frame, got {body}"))
        welcome = frame.welcome
        if welcome.protocol_version != PROTOCOL_VERSION:
            await self._abort(
                ProtocolError(f"server speaks protocol version {welcome.protocol_version}")
            )
        self.server_node = welcome.node
        if welcome.auth_required and self._secret is None:
            await self._abort(AuthenticationError("the server requires a shared secret"))
        if self._secret is not None and (
            not welcome.auth_required
            or not hmac.compare_digest(
                welcome.server_proof,
                server_proof(self._secret, self._client_nonce, welcome.server_nonce),
            )
        ):
            await self._abort(AuthenticationError("the server does not know the secret"))
        return welcome

    async def _abort(self, error: Exception) -> None:
        lost = error if isinstance(error, ConnectionLost) else ConnectionLost(str(error))
        self._fail(lost)
        await self._conn.aclose()
        raise error

    def _fail_closed(self, close: pb.Close) -> None:
        error = error_from_wire(close.error, envelope=False)
        if not isinstance(error, ConnectionLost):
            error = ConnectionLost(f"the server closed the connection: {error}")
        self._fail(error)

    def _dispatch(self, frame: pb.Frame) -> None:
        body = frame.WhichOneof("body")
        if body == "envelope":
            cid, kind = frame.envelope.correlation_id, frame.envelope.kind
        elif body == "extension":
            cid, kind = frame.extension.correlation_id, frame.extension.envelope_kind
        elif body == "close":
            self._fail_closed(frame.close)
            return
        else:
            self._log.warning("ignoring an unexpected %s frame", body)
            return
        if kind != pb.ENVELOPE_KIND_REPLY:
            self._log.warning("ignoring a request from the server")
            return
        pending = self._pending.get(cid)
        if pending is None:
            # The caller gave up (timeout, cancellation) before the reply came.
            self._log.debug("dropping late reply %d", cid)
            return
        pending.reply = frame
        pending.set_wake()

    def _hand_over(self) -> None:
        """Wake one waiting caller so that it takes over reading."""
        for pending in self._pending.values():
            if pending.wake is not None and pending.reply is None and pending.error is None:
                pending.set_wake()
                return

    def _dispatch_buffered(self) -> None:
        """Dispatch every reply already buffered whole, without awaiting."""
        nowait = self._nowait
        while self._error is None:
            try:
                data = nowait()
                if data is None:
                    return
                frame = parse_frame(data)
            except ProtocolError as exc:  # FrameTooLarge included
                self._fail(ConnectionLost(f"connection to {self._conn.remote_address}: {exc}"))
                return
            self._dispatch(frame)

    async def _wait(self, pending: _Pending) -> None:
        """Wait for ``pending`` to complete: as the reader (dispatching every reply that comes
        in), or woken by the reader."""
        while pending.reply is None and pending.error is None:
            if self._reading:
                assert self._backend is not None
                pending.wake = self._backend.new_future()
                try:
                    await pending.wake
                finally:
                    pending.wake = None
                continue
            self._reading = True
            try:
                while not pending.done():
                    self._dispatch(await self._read())
                    # The replies that came in the same read are handed out now, also when
                    # this caller's own is among them: otherwise each would cost a hand-over.
                    self._dispatch_buffered()
            finally:
                self._reading = False

    async def _request(self, frame: pb.Frame, limit: float | None) -> pb.Frame:
        """Send a request ``Frame`` (an envelope or an extension) and return the reply frame."""
        body = frame.envelope if frame.HasField("envelope") else frame.extension
        return await self._request_body(body, limit)

    async def _request_body(
        self, body: pb.Envelope | pb.Extension, limit: float | None
    ) -> pb.Frame:
        if limit is None:
            return await self._exchange(body)
        with anyio.fail_after(limit):
            return await self._exchange(body)

    async def _exchange(self, body: pb.Envelope | pb.Extension) -> pb.Frame:
        if not self._ready or self._error is not None:
            await self._ensure_ready()
        cid = self._next_id
        self._next_id += 1
        pending = _Pending()
        self._pending[cid] = pending
        try:
            body.correlation_id = cid
            data = body_frame(body)
            self._check_size(data)
            if not self._write_nowait(data):
                await self._write(data)
            await self._wait(pending)
        finally:
            del self._pending[cid]
            if not self._reading:
                self._hand_over()
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    def _check_size(self, data: bytes) -> None:
        if len(data) > self._max_frame_size:
            # The server would close the connection on it: refuse it here instead.
            raise FrameTooLarge(len(data), self._max_frame_size)

    async def _send_oneway(self, data: bytes) -> None:
        self._check_size(data)
        await self._ensure_ready()
        await self._write(data)

    async def _envelope_request(
        self,
        node: str,
        actor: str,
        message: object,
        limit: float | None,
        choice: Serializer | None = None,
    ) -> tuple[pb.Envelope, Serializer]:
        """The reply envelope and the serializer that decodes its payload."""
        serializer, type_name, wire = self._serializers.describe(type(message), choice)
        envelope = pb.Envelope(
            kind=pb.ENVELOPE_KIND_REQUEST,
            target_node=node,
            actor_name=actor,
            message_type=type_name,
            payload=encode_payload(serializer, message),
            serializer=wire,
        )
        if limit is None:
            frame = await self._exchange(envelope)
        else:
            with anyio.fail_after(limit):
                frame = await self._exchange(envelope)
        reply = frame.envelope
        if reply.HasField("error"):
            raise error_from_wire(reply.error)
        # Replies use the request's serializer unless the reply's class needed another.
        if reply.serializer != wire:
            serializer = self._serializers.named(reply.serializer)
        return reply, serializer

    def _envelope(
        self,
        node: str,
        actor: str,
        message: object,
        kind: pb.EnvelopeKind.ValueType,
        choice: Serializer | None = None,
    ) -> pb.Envelope:
        serializer, type_name, wire = self._serializers.describe(type(message), choice)
        return pb.Envelope(
            kind=kind,
            target_node=node,
            actor_name=actor,
            message_type=type_name,
            payload=encode_payload(serializer, message),
            serializer=wire,
        )


@final
class RemoteAddr(Generic[A_co]):
    """The address of an actor served by a remote node, bound to one :class:`RemoteClient`.

    Made by :meth:`RemoteClient.remote_addr`. Messages are protobuf messages, or instances of
    any class an installed serializer plugin handles.
    """

    __slots__ = ("_client", "_serializer", "actor_name", "actor_type", "node")

    def __init__(
        self,
        client: RemoteClient,
        actor_type: type[A_co],
        node: str,
        actor_name: str,
        serializer: Serializer | None = None,
    ) -> None:
        self._client = client
        self._serializer = serializer
        self.actor_type = actor_type
        self.node = node
        self.actor_name = actor_name

    async def send(
        self,
        message: object,
        *,
        timeout: float | None = None,  # per-call timeout, as in Addr.send
    ) -> pb.Envelope:
        """Send a request and return the raw reply :class:`Envelope` (decode ``.payload``).

        :raises UnknownActor: the server knows no such node or actor.
        :raises UnknownMessageType: the server does not know or handle the message's type.
        :raises RemoteHandlerError: the remote handler raised.
        :raises cinema.ReplyError: the remote handler answered with this reply error (its class
            is defined here too); the remote actor is not failed.
        :raises RemoteReplyError: the remote handler answered with a reply error whose class is
            not defined here.
        :raises cinema.ActorStopped: the remote actor is stopped.
        :raises ConnectionLost: the connection is (or gets) lost before the reply.
        :raises TimeoutError: no reply within ``timeout`` seconds.
        :raises UnknownSerializer: no serializer handles the message's class, or the server
            has none of the name the message carries.
        """
        reply, _ = await self._client._envelope_request(
            self.node, self.actor_name, message, timeout, self._serializer
        )
        return reply

    @overload
    async def call(
        self, rpc: Rpc[Req, Resp], message: Req, /, *, timeout: float | None = None
    ) -> Resp: ...

    @overload
    async def call(self, message: Message[R], /, *, timeout: float | None = None) -> R: ...

    @overload
    async def call(
        self, message: ProtoMessage, /, *, timeout: float | None = None
    ) -> ProtoMessage | None: ...

    @overload
    async def call(self, message: object, /, *, timeout: float | None = None) -> object: ...

    async def call(
        self,
        first: Rpc[Req, Resp] | object,
        message: Req | None = None,
        /,
        *,
        timeout: float | None = None,  # per-call timeout, as in Addr.send
    ) -> Resp | object:
        """Send a request and return its decoded reply.

        A :class:`cinema.Message` ``[R]`` (e.g. a dataclass) returns its ``R``, decoded as an
        ``R`` and typed for mypy, as ``Addr.send`` does locally::

            count = await remote.call(AddItem("tea", 2))   # AddItem(Message[int]): int

        Protobuf classes cannot subclass ``Message``: pass an :class:`Rpc` that names the reply
        type::

            ADD = rpc(Add, AddResult)
            result = await remote.call(ADD, Add(n=5))   # mypy: AddResult

        Untyped: ``await remote.call(Add(n=5))`` decodes the reply by the type name it carries
        (its module must be imported) and returns it as a protobuf ``Message``, or ``None``
        when the handler returned nothing. With other serializers the untyped form only knows
        the request's own class; pass an :class:`Rpc` for anything else.

        Raises what :meth:`send` raises, and :class:`ProtocolError` if the reply is not of the
        expected (or of any known) type.
        """
        if isinstance(first, Rpc):
            # (``first`` narrows to ``Rpc[Any, Any]`` here: the overloads carry the typing.)
            pair: Rpc[Any, Any] = first
            typed: object = await self._call_rpc(pair, message, timeout)
            return typed
        if message is not None:
            raise TypeError("call(message) takes one message; use call(rpc, message)")
        # (Resolved before sending: a reply type that cannot be resolved sends nothing.)
        expected = reply_type(type(first)) if isinstance(first, Message) else NO_REPLY_TYPE
        reply, serializer = await self._client._envelope_request(
            self.node, self.actor_name, first, timeout, self._serializer
        )
        if not reply.message_type:
            return None
        if expected is not NO_REPLY_TYPE:
            return decode_typed_reply(serializer, reply, expected)
        cls: type | None = None
        if serializer is PROTOBUF:
            cls = find_message_class(reply.message_type)
        elif serializer.handles(type(first)) and serializer.type_name(type(first)) == (
            reply.message_type
        ):
            cls = type(first)
        if cls is None:
            raise ProtocolError(
                f"reply of unknown type {reply.message_type!r} ({serializer.name}): import its"
                " module, or name the reply type with call(rpc(Request, Reply), message)"
            )
        decoded: object = _decode_reply(serializer, reply, cls)
        return decoded

    async def _call_rpc(self, rpc: Rpc[Req, Resp], message: object, limit: float | None) -> Resp:
        if not isinstance(message, rpc.request):
            raise TypeError(
                f"{rpc!r} takes {rpc.request.__qualname__}, not {type(message).__qualname__}"
            )
        reply, serializer = await self._client._envelope_request(
            self.node, self.actor_name, message, limit, self._serializer
        )
        response = rpc.response
        if (serializer is PROTOBUF and issubclass(response, ProtoMessage)) or serializer.handles(
            response
        ):
            expected = payload_type_name(serializer, response)  # cached for protobuf
        else:
            expected = f"{response.__qualname__} ({serializer.name} does not handle it)"
        if reply.message_type != expected:
            raise ProtocolError(
                f"expected a {expected} reply, got {reply.message_type or 'no value'!r}"
            )
        try:
            return decode_payload(serializer, reply.payload, response)
        except PayloadDecodeError as exc:
            # The server sent something that does not parse: a protocol fault on its side.
            raise ProtocolError(f"cannot decode the reply: {exc}") from exc

    async def do_send(self, message: object) -> None:
        """Send a one-way message; return once it is written (no reply, no remote errors).

        :raises ConnectionLost: the connection is lost.
        :raises UnknownSerializer: no serializer handles the message's class.
        """
        client = self._client
        envelope = client._envelope(
            self.node, self.actor_name, message, pb.ENVELOPE_KIND_ONEWAY, self._serializer
        )
        await client._send_oneway(body_frame(envelope))

    def __repr__(self) -> str:
        return f"<RemoteAddr {self.actor_type.__qualname__} {self.actor_name!r}@{self.node!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RemoteAddr):
            return NotImplemented
        return (self._client, self.node, self.actor_name) == (
            other._client,
            other.node,
            other.actor_name,
        )

    def __hash__(self) -> int:
        return hash((id(self._client), self.node, self.actor_name))


def decode_typed_reply(serializer: Serializer, reply: pb.Envelope, expected: object) -> object:
    """The payload of ``reply`` (not empty) decoded as ``expected``, the ``R`` of the request's
    ``Message[R]`` (a class, or a type expression such as ``list[Item]``).

    :raises ProtocolError: the reply is not an ``expected`` (wrong class, undecodable), or no
        serializer here can decode one.
    """
    if expected is NO_REPLY_TYPE:
        expected = Any
    members = _union_members.get(expected)
    if members is None:
        members = _union_members[expected] = _named_members(expected)
    if members:
        # ``Message[Ok | NotFound]``: the reply's type name picks the class (other members,
        # such as None or int, are decoded as the union).
        expected = members.get((reply.serializer, reply.message_type), expected)
    if isinstance(expected, type) and issubclass(expected, ProtoMessage):
        if serializer is not PROTOBUF or reply.message_type != type_name_of(expected):
            raise ProtocolError(
                f"expected a {type_name_of(expected)} reply, got {reply.message_type!r}"
                f" ({serializer.name})"
            )
        return _decode_reply(PROTOBUF, reply, expected)
    if isinstance(serializer, MsgspecSerializer):
        name = _checked_names.get(expected, "")
        if name == "":
            name = _checked_names[expected] = _checked_name(serializer, expected)
        if name is not None and reply.message_type != name:
            raise ProtocolError(f"expected a {name} reply, got {reply.message_type!r}")
        try:
            return serializer.decode_as(reply.payload, expected)
        except ValueError as exc:
            raise ProtocolError(
                f"the reply is not a {_describe(expected)}: {clip(str(exc))}"
            ) from exc
        except TypeError as exc:
            raise ProtocolError(f"cannot decode a reply as {_describe(expected)}: {exc}") from exc
    if isinstance(expected, type) and serializer.handles(expected):
        return _decode_reply(serializer, reply, expected)
    raise ProtocolError(
        f"a {serializer.name} reply {clip(reply.message_type)!r} cannot be decoded as"
        f" {_describe(expected)}"
    )


# Reply type -> the wire name a reply must carry (None: not checked), per type expression of
# this process's code (Message[R] classes' R), never keyed by anything from the wire.
_checked_names: dict[object, str | None] = {}


def _checked_name(serializer: MsgspecSerializer, expected: object) -> str | None:
    # Classes with a name of their own on the wire (dataclasses, Structs), not values such as
    # int or list, whose name says nothing the decoding does not check.
    if (
        isinstance(expected, type)
        and (dataclasses.is_dataclass(expected) or issubclass(expected, msgspec.Struct))
        and serializer.handles(expected)
    ):
        return serializer.type_name(expected)
    return None


# Union reply type -> its class members by (Envelope.serializer, wire type name).
_union_members: dict[object, dict[tuple[str, str], type]] = {}


def _named_members(expected: object) -> dict[tuple[str, str], type]:
    if get_origin(expected) not in (Union, UnionType):
        return {}
    found: dict[tuple[str, str], type] = {}
    msgspec_serializer = MsgspecSerializer()
    for member in get_args(expected):
        if not isinstance(member, type):
            continue
        if issubclass(member, ProtoMessage):
            found[("", type_name_of(member))] = member
        else:
            name = _checked_name(msgspec_serializer, member)
            if name is not None:
                found[(MsgspecSerializer.name, name)] = member
    return found


def _describe(tp: object) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def _decode_reply(serializer: Serializer, reply: pb.Envelope, cls: type[Resp]) -> Resp:
    try:
        return decode_payload(serializer, reply.payload, cls)
    except PayloadDecodeError as exc:
        # The server sent something that does not parse: a protocol fault on its side.
        raise ProtocolError(str(exc)) from exc


RemoteClient.__module__ = "cinema.remote"
RemoteAddr.__module__ = "cinema.remote"
