"""The dashboard without a browser: what the collector gathers, what the app serves, its guards."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import httpx2
import pytest
from starlette.testclient import TestClient

from cinema import ActorSystem
from cinema.cluster import ClusterNode, MemoryNetwork, MemoryTransport, NodeStatus
from cinema.dashboard import Collector, Dashboard, DashboardError, create_app
from cinema.remote import LocalNode, MessageRouter
from tests.cluster.support import Ping, PingPong, eventually

pytestmark = pytest.mark.anyio

INTERVAL, TIMEOUT = 0.05, 0.4


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # the collector is plain anyio
async def test_the_collector_follows_the_cluster_from_one_seed() -> None:
    transport = MemoryTransport(MemoryNetwork(seed=5))
    options: dict[str, Any] = {
        "transport": transport,
        "gossip_interval": INTERVAL,
        "suspect_timeout": TIMEOUT,
    }
    async with ActorSystem() as system, ClusterNode("a", "mem://a", **options) as a:
        addr = system.spawn(PingPong("b"))
        local = LocalNode("b")
        local.expose("pingpong", addr)
        router = MessageRouter(local).route(Ping, local.handler(addr, Ping)).build()
        collector = Collector(
            ["mem://a"], interval=0.05, transport=transport.bound_to("mem://dash")
        )
        with anyio.CancelScope() as crash:
            async with ClusterNode(
                "b", "mem://b", handler=router, seeds=["mem://a"], **options
            ) as b:
                await b.register_actor("pingpong", "PingPong")
                await eventually(lambda: a.lookup_actor("pingpong") is not None)
                await eventually(lambda: a.status_of("b") is NodeStatus.UP)
                await collector.poll()  # learns b's address from a
                await collector.poll()
                state = collector.state
                assert {m["id"]: m["status"] for m in state["members"]} == {"a": "Up", "b": "Up"}
                assert sorted(collector.addresses()) == ["mem://a", "mem://b"]
                reachable = {n["id"]: n for n in state["nodes"] if n["reachable"]}
                assert set(reachable) == {"a", "b"}
                assert reachable["b"]["registry"] == {"pingpong": {"node": "b", "type": "PingPong"}}
                assert state["actor_types"]["PingPong"]["live"] >= 1
                crash.cancel()
                await anyio.sleep_forever()
        await eventually(lambda: a.status_of("b") is NodeStatus.DOWN)
        await collector.poll()
        state = collector.state
        assert {m["id"]: m["status"] for m in state["members"]} == {"a": "Up", "b": "Down"}
        assert [n["reachable"] for n in state["nodes"] if n["addr"] == "mem://b"] == [False]
        assert state["samples"][-1]["status"] == {"a": "Up", "b": "Down"}
        await collector.aclose()


def _app(secret: str | None = None) -> TestClient:
    collector = Collector(["127.0.0.1:1"])
    collector.state = {"time": 1.0, "members": [{"id": "x", "status": "Up"}], "nodes": []}
    return TestClient(create_app(collector, secret=secret))


def test_the_page_and_the_state_are_served() -> None:
    with _app() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "static/dashboard.js" in page.text
        script = client.get("/static/dashboard.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "EventSource" in script.text
        assert client.get("/static/../app.py").status_code == 404
        assert client.get("/static/nothing.js").status_code == 404
        assert client.get("/api/state").json()["members"] == [{"id": "x", "status": "Up"}]
        # Read-only: nothing but GET.
        assert client.post("/api/state").status_code == 405


def test_a_secret_is_required_when_given() -> None:
    with _app(secret="s3cret") as client:
        refused = client.get("/api/state")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        wrong = base64.b64encode(b"cinema:nope").decode()
        assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Basic %%%"}).status_code == 401
        good = base64.b64encode(b"cinema:s3cret").decode()
        answer = client.get("/api/state", headers={"Authorization": f"Basic {good}"})
        assert answer.status_code == 200


def test_exposing_without_a_secret_is_refused() -> None:
    with pytest.raises(DashboardError, match="secret"):
        Dashboard(["127.0.0.1:7001"], host="0.0.0.0")
    Dashboard(["127.0.0.1:7001"], host="0.0.0.0", secret="s")
    Dashboard(["127.0.0.1:7001"], host="0.0.0.0", insecure=True)
    Dashboard(["127.0.0.1:7001"], host="::1")
    with pytest.raises(ValueError, match="seed"):
        Collector([])


async def test_the_event_stream_pushes_every_poll() -> None:
    # A node that is not there: the dashboard still serves, showing it unreachable.
    async with Dashboard(["127.0.0.1:9"], port=0, interval=0.05) as dashboard:
        events: list[dict[str, Any]] = []
        async with (
            httpx2.AsyncClient(base_url=dashboard.url) as client,
            client.stream("GET", "events") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if len(events) == 3:
                        break
    assert events[-1]["nodes"] == [{"addr": "127.0.0.1:9", "reachable": False}]
    assert events[-1]["poll"] > events[1]["poll"]


def test_a_malformed_document_stays_with_its_node() -> None:
    collector = Collector(["mem://a", "mem://b"])
    good = {
        "node": {"node_id": "a", "members": [{"id": "a", "addr": "mem://a", "status": "Up"}]},
        "systems": [{"actor_types": {"Echo": {"live": 2, "messages": 5, "mailbox": 1}}}],
    }
    bad = {"node": {"node_id": "b", "members": [{"id": "b"}]}, "systems": "nonsense"}
    collector._publish({"mem://a": good, "mem://b": bad})
    state = collector.state
    assert [m["id"] for m in state["members"]] == ["a"]
    assert [n["reachable"] for n in state["nodes"]] == [True, False]
    assert state["actor_types"] == {"Echo": {"messages": 5, "mailbox": 1, "live": 2}}
