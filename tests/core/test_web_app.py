"""examples/web_app.py: a Starlette app with sync and async endpoints talking to one actor."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import pytest
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.web_app import app  # noqa: E402


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_and_async_endpoints_share_one_actor(backend: Literal["asyncio", "trio"]) -> None:
    with TestClient(app, backend=backend) as client:
        assert client.post("/async/hit/home").json() == {"page": "home", "hits": 1}
        assert client.post("/sync/hit/home").json() == {"page": "home", "hits": 2}
        assert client.get("/sync/count/home").json() == {"page": "home", "hits": 2}
        # An expected error: a 404, and the counter keeps its counts.
        for path in ("/sync/count/nowhere", "/async/count/nowhere"):
            missing = client.get(path)
            assert missing.status_code == 404
            assert missing.json() == {"error": "no visits to 'nowhere' yet"}
        assert client.get("/async/count/home").json() == {"page": "home", "hits": 2}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_concurrent_requests_from_many_threads(backend: Literal["asyncio", "trio"]) -> None:
    with TestClient(app, backend=backend) as client:

        def visit(i: int) -> int:
            kind = ("async/hit", "sync/hit", "sync/hit-later")[i % 3]
            return client.post(f"/{kind}/news").status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(visit, range(60)))
        assert sorted(set(codes)) == [200, 202]
        # The fire-and-forget hits were queued before this request's own Hit: all 61 counted.
        assert client.post("/sync/hit/news").json() == {"page": "news", "hits": 61}
