"""Polls every node of a cluster for its statistics and keeps a short history of them.

Each node answers ``cinema.observe.stats`` extension requests on its own port (see
:data:`cinema.cluster.STATS_EXTENSION`): its view of the membership, its registry and the actor
systems of its process. The collector starts from the seeds, then asks every member any node
reported, once per ``interval``; a node that does not answer is shown unreachable (its peers'
view says whether it is Suspect or Down).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import anyio

from cinema.abc import Transport
from cinema.cluster import STATS_EXTENSION
from cinema.remote import RemoteClient, resolve_transport

__all__ = ["Collector"]

log = logging.getLogger("cinema.dashboard")

# How bad a status is, to break ties between the views of different nodes.
_SEVERITY = {"Up": 0, "Suspect": 1, "Down": 2, "Left": 3}
# The longest stats document accepted from a node.
MAX_DOCUMENT = 16 * 1024 * 1024
RECENT_FAILURES = 50


def _status_of(views: dict[str, str]) -> str:
    """A member's status as the cluster sees it: the most common one among the observers'
    views (a tie goes to the worse status)."""
    counts: dict[str, int] = {}
    for status in views.values():
        counts[status] = counts.get(status, 0) + 1
    return max(counts, key=lambda s: (counts[s], _SEVERITY.get(s, 9)))


class Collector:
    """Keeps the latest picture of a cluster and the last ``history`` samples of it.

    :param seeds: node addresses to start from (``"host:port"``)
    :param secret: the cluster's shared secret, if it has one
    :param interval: seconds between polls
    :param history: samples kept (for the charts over time)
    :param transport: transport to reach the nodes with (default: by address scheme)
    """

    def __init__(
        self,
        seeds: Sequence[str],
        *,
        secret: bytes | str | None = None,
        interval: float = 1.0,
        history: int = 300,
        transport: Transport | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("the dashboard needs at least one seed address")
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.seeds = list(seeds)
        self.interval = float(interval)
        self._secret = secret
        self._transport = transport
        self._clients: dict[str, RemoteClient] = {}
        self._addresses: dict[str, None] = dict.fromkeys(self.seeds)
        self._samples: deque[dict[str, Any]] = deque(maxlen=history)
        self._last_messages: dict[str, tuple[float, int]] = {}  # type -> (time, total)
        self._failures: dict[tuple[str, float, str], dict[str, Any]] = {}
        self.state: dict[str, Any] = {"time": 0.0, "nodes": [], "members": [], "samples": []}
        self.polls = 0
        self._changed: anyio.Event | None = None  # made by the first wait_changed()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll every ``interval`` seconds until cancelled."""
        try:
            while True:
                await self.poll()
                await anyio.sleep(self.interval)
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Close the connections to the nodes."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            try:
                await client.aclose()
            except Exception:  # closing a broken connection may fail: it is gone either way
                log.debug("closing a connection failed", exc_info=True)

    def wake(self) -> None:
        """Wake everyone waiting in :meth:`wait_changed` (at shutdown)."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def wait_changed(self) -> None:
        """Wait for the next poll to finish."""
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    async def poll(self) -> None:
        """Ask every known node for its statistics once (concurrently), then publish."""
        documents: dict[str, dict[str, Any] | None] = {}

        async def one(address: str) -> None:
            documents[address] = await self._fetch(address)

        with anyio.move_on_after(max(2.0, 2 * self.interval)):
            async with anyio.create_task_group() as tg:
                for address in list(self._addresses):
                    tg.start_soon(one, address)
        self._publish(documents)

    async def _fetch(self, address: str) -> dict[str, Any] | None:
        try:
            with anyio.fail_after(max(1.0, self.interval)):
                client = self._clients.get(address)
                if client is None or client.is_closed:
                    transport = resolve_transport(address, self._transport)
                    conn = await transport.connect(address)
                    client = RemoteClient(conn, secret=self._secret, node="cinema-dashboard")
                    self._clients[address] = client
                data = await client.request_extension(STATS_EXTENSION, b"")
            if len(data) > MAX_DOCUMENT:
                raise ValueError(f"a stats document of {len(data)} bytes")
            document = json.loads(data)
            if not isinstance(document, dict) or not isinstance(document.get("node"), dict):
                raise ValueError("not a stats document")
            return document
        except Exception as exc:  # every node's trouble stays with that node
            log.debug("no stats from %s: %r", address, exc)
            client = self._clients.pop(address, None)
            if client is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                    try:
                        await client.aclose()
                    except Exception:
                        log.debug("closing the connection to %s failed", address, exc_info=True)
            return None

    # -- the picture ----------------------------------------------------------------------

    def _publish(self, documents: dict[str, dict[str, Any] | None]) -> None:
        now = time.time()
        nodes: list[dict[str, Any]] = []
        views: dict[str, dict[str, str]] = {}  # member id -> observer id -> status
        member_addr: dict[str, str] = {}
        by_type: dict[str, dict[str, float]] = {}
        for address, document in sorted(documents.items()):
            if document is not None:
                try:
                    self._read(address, document, nodes, views, member_addr, by_type)
                    continue
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    # A node's bad answer stays with that node.
                    log.warning("a malformed stats document from %s: %r", address[:80], exc)
            nodes.append({"addr": address, "reachable": False})
        self._finish(now, nodes, views, member_addr, by_type)

    def _read(
        self,
        address: str,
        document: dict[str, Any],
        nodes: list[dict[str, Any]],
        views: dict[str, dict[str, str]],
        member_addr: dict[str, str],
        by_type: dict[str, dict[str, float]],
    ) -> None:
        """Take one node's stats document into the picture being made (all or nothing: a
        malformed document raises before anything is merged)."""
        node = document["node"]
        node_id = str(node.get("node_id", address))
        seen: dict[str, str] = {}
        addrs: dict[str, str] = {}
        for member in node.get("members", []):
            mid = str(member["id"])
            addrs[mid] = str(member["addr"])
            seen[mid] = str(member["status"])
        actors: dict[str, int] = {}
        rows: list[tuple[str, int, int, int]] = []
        failures: dict[tuple[str, float, str], dict[str, Any]] = {}
        for system in document.get("systems", []):
            for name, row in system.get("actor_types", {}).items():
                live = int(row.get("live", 0))
                actors[str(name)] = actors.get(str(name), 0) + live
                rows.append(
                    (str(name), int(row.get("messages", 0)), int(row.get("mailbox", 0)), live)
                )
            for failure in system.get("recent_failures", []):
                key = (node_id, float(failure.get("at", 0)), str(failure.get("actor", "")))
                failures[key] = {"node": node_id, **failure}
        registry = document.get("registry", {})
        if not isinstance(registry, dict):
            raise TypeError("registry is not an object")
        # Merge.
        for mid, status in seen.items():
            observed = views.setdefault(mid, {})
            if mid != node_id:
                observed[node_id] = status
        member_addr.update(addrs)
        for name, messages, mailbox, live in rows:
            agg = by_type.setdefault(name, {"messages": 0, "mailbox": 0, "live": 0})
            agg["messages"] += messages
            agg["mailbox"] += mailbox
            agg["live"] += live
        self._failures.update(failures)
        nodes.append(
            {
                "addr": address,
                "reachable": True,
                "id": node_id,
                "actors": actors,
                "registry": registry,
                "stats": {k: v for k, v in node.items() if k != "members"},
            }
        )

    def _finish(
        self,
        now: float,
        nodes: list[dict[str, Any]],
        views: dict[str, dict[str, str]],
        member_addr: dict[str, str],
        by_type: dict[str, dict[str, float]],
    ) -> None:
        # Learn every member's address, so the next poll asks it too.
        for address in member_addr.values():
            self._addresses.setdefault(address, None)
        members = []
        for mid in sorted(views):
            observed = views[mid]
            reachable = any(n.get("id") == mid for n in nodes if n["reachable"])
            # A member only the node itself reports (no other observer yet): Up if it answers.
            status = _status_of(observed) if observed else ("Up" if reachable else "Unknown")
            members.append(
                {
                    "id": mid,
                    "addr": member_addr.get(mid, ""),
                    "status": status,
                    "views": observed,
                    "reachable": reachable,
                }
            )
        rates: dict[str, float] = {}
        for name, agg in by_type.items():
            last = self._last_messages.get(name)
            total = int(agg["messages"])
            if last is not None and now > last[0]:
                rates[name] = max(0.0, (total - last[1]) / (now - last[0]))
            self._last_messages[name] = (now, total)
        self._samples.append(
            {
                "time": now,
                "status": {m["id"]: m["status"] for m in members},
                "mailbox": {name: agg["mailbox"] for name, agg in by_type.items()},
                "rate": rates,
            }
        )
        failures = sorted(self._failures.values(), key=lambda f: float(f.get("at", 0)))
        failures = failures[-RECENT_FAILURES:]
        self._failures = {
            (str(f["node"]), float(f.get("at", 0)), str(f.get("actor", ""))): f for f in failures
        }
        self.polls += 1
        self.state = {
            "time": now,
            "interval": self.interval,
            "poll": self.polls,
            "nodes": nodes,
            "members": members,
            "actor_types": by_type,
            "samples": list(self._samples),
            "failures": list(reversed(failures)),
        }
        self.wake()

    def addresses(self) -> Iterable[str]:
        """Every node address the collector asks."""
        return list(self._addresses)
