"""A Starlette web app whose endpoints talk to actors, from async and from sync (``def``) code.

The actor system lives as long as the app (its lifespan). ``async def`` endpoints run in the
event loop and ``await addr.send(...)``. Plain ``def`` endpoints run in a worker thread of the
server's thread pool: there ``addr.send_from_thread(...)`` blocks that thread until the reply
comes, and ``addr.do_send(...)`` is safe as it is. A handler's :class:`cinema.ReplyError`
(here ``UnknownPage``) reaches the endpoint typed, becomes a 404, and the actor keeps its state.

Run it with an ASGI server, e.g. ``pip install starlette uvicorn`` then
``uvicorn examples.web_app:app``; ``tests/core/test_web_app.py`` drives it with Starlette's
``TestClient`` on asyncio and trio. FastAPI apps are Starlette apps: the same code works in
FastAPI ``def`` and ``async def`` path operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Self, TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cinema import Actor, ActorSystem, Addr, Context, Message, ReplyError, handler


class UnknownPage(ReplyError):
    """An expected outcome: the caller gets it raised; the counter is not failed."""


@dataclass
class Hit(Message[int]):
    """Count a visit; the reply is the page's count so far."""

    page: str


@dataclass
class Count(Message[int]):
    """How many visits a page had; raises UnknownPage for a page never visited."""

    page: str


class HitCounter(Actor):
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    @handler
    def hit(self, msg: Hit, ctx: Context[Self]) -> int:
        self.hits[msg.page] = self.hits.get(msg.page, 0) + 1
        return self.hits[msg.page]

    @handler
    def count(self, msg: Count, ctx: Context[Self]) -> int:
        if msg.page not in self.hits:
            raise UnknownPage(f"no visits to {msg.page!r} yet")
        return self.hits[msg.page]


class State(TypedDict):
    counter: Addr[HitCounter]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[State]:
    async with ActorSystem() as system:
        yield {"counter": system.spawn(HitCounter())}


def counter_of(request: Request) -> Addr[HitCounter]:
    counter: Addr[HitCounter] = request.state.counter
    return counter


async def hit_async(request: Request) -> Response:
    """``async def``: runs in the event loop, awaits the actor."""
    page = request.path_params["page"]
    hits = await counter_of(request).send(Hit(page))
    return JSONResponse({"page": page, "hits": hits})


def hit_sync(request: Request) -> Response:
    """``def``: runs in a worker thread, blocks it until the actor replies."""
    page = request.path_params["page"]
    hits = counter_of(request).send_from_thread(Hit(page))
    return JSONResponse({"page": page, "hits": hits})


def hit_later(request: Request) -> Response:
    """``def``, fire and forget: do_send from a worker thread wakes the event loop itself."""
    counter_of(request).do_send(Hit(request.path_params["page"]))
    return Response(status_code=202)


def count_sync(request: Request) -> Response:
    page = request.path_params["page"]
    try:
        hits = counter_of(request).send_from_thread(Count(page))
    except UnknownPage as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse({"page": page, "hits": hits})


async def count_async(request: Request) -> Response:
    page = request.path_params["page"]
    try:
        hits = await counter_of(request).send(Count(page))
    except UnknownPage as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse({"page": page, "hits": hits})


app = Starlette(
    routes=[
        Route("/async/hit/{page}", hit_async, methods=["POST"]),
        Route("/sync/hit/{page}", hit_sync, methods=["POST"]),
        Route("/sync/hit-later/{page}", hit_later, methods=["POST"]),
        Route("/sync/count/{page}", count_sync),
        Route("/async/count/{page}", count_async),
    ],
    lifespan=lifespan,
)
