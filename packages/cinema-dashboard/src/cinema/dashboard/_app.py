"""The web side: a Starlette app (page, JSON snapshot, server-sent events) and its server."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from types import TracebackType
from typing import Any, Self

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cinema.abc import Transport

from ._collector import Collector

__all__ = ["Dashboard", "DashboardError", "create_app"]

log = logging.getLogger("cinema.dashboard")

#: The default port of the dashboard's web server.
DEFAULT_PORT = 8090
# Static files served, by name, with their media types.
_STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# The HTTP basic-auth user name (the password is the cluster's secret).
USER = "cinema"


class DashboardError(Exception):
    """The dashboard cannot start as configured (e.g. exposed without a secret)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return resources.files("cinema.dashboard").joinpath("static", name).read_bytes()


class _BasicAuth:
    """HTTP basic auth with the cluster's secret as the password (user ``cinema``)."""

    def __init__(self, app: ASGIApp, secret: bytes) -> None:
        self.app = app
        self._expected = USER.encode() + b":" + secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization" and value[:6].lower() == b"basic ":
                try:
                    given = base64.b64decode(value[6:].strip(), validate=True)
                except (binascii.Error, ValueError):
                    given = b""
        if not hmac.compare_digest(given, self._expected):
            response = Response(
                "the cluster's secret is required (user 'cinema')\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="cinema-dashboard"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Flag:
    """Set once the dashboard stops: its event streams end."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def create_app(collector: Collector, *, secret: bytes | str | None = None) -> Starlette:
    """The dashboard's read-only ASGI app over ``collector``.

    Routes (all ``GET``): ``/`` the page, ``/static/...`` its script and style,
    ``/api/state`` the latest picture as JSON, ``/events`` the same as server-sent events, one
    per poll. With ``secret``, every request needs HTTP basic auth (user ``cinema``, the secret
    as password).
    """
    page = _static("index.html")
    closing = _Flag()

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        media = _STATIC.get(name)
        if media is None:
            return Response("not found\n", status_code=404)
        return Response(_static(name), media_type=media, headers={"Cache-Control": "no-cache"})

    async def state(request: Request) -> Response:
        return JSONResponse(collector.state)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            yield f"data: {json.dumps(collector.state)}\n\n"
            while not closing.is_set():
                with anyio.move_on_after(15) as scope:
                    await collector.wait_changed()
                if closing.is_set():
                    return
                if scope.cancelled_caught:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(collector.state)}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    middleware = []
    if secret is not None:
        key = secret.encode() if isinstance(secret, str) else secret
        middleware.append(Middleware(_BasicAuth, secret=key))
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/api/state", state),
            Route("/events", events),
        ],
        middleware=middleware,
    )
    app.state.closing = closing
    return app


class Dashboard:
    """The dashboard, serving in the background while the ``async with`` block runs::

        async with Dashboard(["127.0.0.1:7001"]) as dashboard:
            print("dashboard at", dashboard.url)
            ...

    Runs on asyncio (uvicorn's loop); the cluster it watches may run on any backend.

    :param seeds: addresses of one or more nodes of the cluster
    :param host: the address to serve the page on (default loopback)
    :param port: the port (``0``: a free one; see :attr:`url`)
    :param secret: the cluster's shared secret: used to reach the nodes, and required from the
        browser (HTTP basic auth, user ``cinema``) whenever it is given
    :param insecure: serve a non-loopback ``host`` without a secret
    :param interval: seconds between polls of the nodes
    :param transport: transport to reach the nodes with (default: by address scheme)
    :raises DashboardError: a non-loopback ``host`` without ``secret`` (and not ``insecure``)
    """

    def __init__(
        self,
        seeds: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        secret: bytes | str | None = None,
        insecure: bool = False,
        interval: float = 1.0,
        transport: Transport | None = None,
    ) -> None:
        if not is_loopback(host) and secret is None and not insecure:
            raise DashboardError(
                f"refusing to serve the dashboard on {host} without the cluster's secret: give"
                " secret=... (--secret), or insecure=True (--insecure)"
            )
        self.collector = Collector(seeds, secret=secret, interval=interval, transport=transport)
        self.host = host
        self.port = port
        self.app = create_app(self.collector, secret=secret)
        self._tg: anyio.abc.TaskGroup | None = None
        self._server: Any = None
        self._served: anyio.Event | None = None

    @property
    def url(self) -> str:
        """Where the page is served, e.g. ``http://127.0.0.1:8090/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def __aenter__(self) -> Self:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise DashboardError(f"cannot serve on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
            loop="none",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._served = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self.collector.run)
        tg.start_soon(self._serve, server, sock)
        return self

    async def _serve(self, server: Any, sock: socket.socket) -> None:
        # uvicorn's serve() without its signal capture: the application's own handling of
        # Ctrl-C (e.g. the demo's) stays in place.
        try:
            config = server.config
            if not config.loaded:
                config.load()
            server.lifespan = config.lifespan_class(config)
            await server.startup(sockets=[sock])
            if not server.should_exit:
                await server.main_loop()
            if server.started:
                await server.shutdown(sockets=[sock])
        finally:
            sock.close()
            assert self._served is not None
            self._served.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        assert tg is not None
        self.app.state.closing.set()
        self.collector.wake()  # ends the event streams
        self._server.should_exit = True
        # uvicorn finishes its open responses (at most a second), then everything is cancelled.
        with anyio.CancelScope(shield=True), anyio.move_on_after(3):
            assert self._served is not None
            await self._served.wait()
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)

    async def serve_forever(self) -> None:
        """Serve until cancelled (the ``python -m cinema.dashboard`` command)."""
        async with self:
            await anyio.sleep_forever()
