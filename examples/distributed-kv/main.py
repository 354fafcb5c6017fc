"""Distributed key-value store: gossip membership, actor discovery, location-transparent
messaging and failure detection, in one small program.

Start three nodes in three terminals (node-N listens on port 7000+N unless ``--port`` says)::

    python examples/distributed-kv/main.py node-1
    python examples/distributed-kv/main.py node-2 127.0.0.1:7001
    python examples/distributed-kv/main.py node-3 127.0.0.1:7001

Then type commands at any node's prompt::

    > set user:1 alice
    OK
    > get user:1
    alice
    > members
    > actors

Every node runs a ``KVStore`` actor and serves it in the cluster as ``kv-store``
(``ClusterNode.serve``: on the node's port, with every message type it handles, and in the
cluster registry under its class name); the cluster
registry resolves the name to the same store on every node (the earliest registration: node-1's
while it lives), so ``set`` on one node and ``get`` on another meet in one store, reached through
``ClusterClient`` wherever it runs. Membership changes are printed as they happen
(``[cluster] node-3 is Suspect``). The data lives in that one store and nowhere else: when its
node goes Down or leaves, the name resolves to the next node's store, which starts empty, and
every node says so (``[cluster] kv-store moved to node-2 (node-1 is Down): it starts
empty``). With stdin not a terminal the node reads commands from it
without prompts, ends each command's output with a blank line, and keeps serving at end of
input; Ctrl-C or SIGTERM leaves the cluster gracefully.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

import anyio
import anyio.lowlevel
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectSendStream

from cinema import Actor, ActorSystem, Context, Message, handler
from cinema.cluster import (
    ClusterClient,
    ClusterError,
    ClusterNode,
    MemberEvent,
    NodeStatus,
)
from cinema.remote import RemoteError

STORE = "kv-store"

# -- messages: plain dataclasses, the same classes on every node; Message[R] types the reply ---


@dataclass
class Set(Message[None]):
    key: str
    value: str


@dataclass
class Get(Message[str | None]):
    """The value, or ``None`` for a key that is not set."""

    key: str


@dataclass
class Delete(Message[bool]):
    """Whether the key was set."""

    key: str


class KVStore(Actor):
    """The data: a dict owned by one actor, so no locks."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    @handler
    def set(self, msg: Set, ctx: Context[Self]) -> None:
        self.data[msg.key] = msg.value

    @handler
    def get(self, msg: Get, ctx: Context[Self]) -> str | None:
        return self.data.get(msg.key)

    @handler
    def delete(self, msg: Delete, ctx: Context[Self]) -> bool:
        return self.data.pop(msg.key, None) is not None


class StoreLocation:
    """Which node's store the name resolves to, to notice when the data is lost: the name moves
    on to another node's (empty) store when its node goes Down or leaves."""

    def __init__(self) -> None:
        self.node_id: str | None = None

    def moved(self, node: ClusterNode) -> str | None:
        """The notice to print if the store has moved away from a node that is gone."""
        where = node.lookup_actor(STORE)
        if where is None:
            return None
        previous, self.node_id = self.node_id, where[0]
        if previous is None or previous == where[0]:
            return None
        # A move to a node that registered earlier is only gossip arriving (a node resolves
        # the name to its own store until it hears of the others): the data is there.
        status = {n.id: n.status for n in node.members()}.get(previous)
        if status in (NodeStatus.UP, NodeStatus.SUSPECT):
            return None
        gone = "gone" if status is None else str(status)
        return f"[cluster] {STORE} moved to {where[0]} ({previous} is {gone}): it starts empty"


class EventPrinter(Actor):
    """Prints membership changes as they happen (at a terminal, above a fresh prompt)."""

    def __init__(self, interactive: bool, node: ClusterNode, store: StoreLocation) -> None:
        self.interactive = interactive
        self.node = node
        self.store = store

    @handler
    def on_event(self, msg: MemberEvent, ctx: Context[Self]) -> None:
        self.show(f"[cluster] {msg.node.id} is {msg.node.status}")
        notice = self.store.moved(self.node)
        if notice is not None:
            self.show(notice)

    def show(self, line: str) -> None:
        if self.interactive:
            print(f"\r{line}\n> ", end="", flush=True)
        else:
            print(line, flush=True)


HELP = """commands:
  set KEY VALUE   store a value
  get KEY         read a value
  del KEY         delete a value
  members         cluster members and their status
  actors          actors registered in the cluster
  quit            leave the cluster and exit"""
USAGE = {"set": "usage: set KEY VALUE", "get": "usage: get KEY", "del": "usage: del KEY"}


async def run_command(
    line: str, node: ClusterNode, client: ClusterClient, location: StoreLocation | None = None
) -> str | None:
    """Execute one command line; return its output (``None``: quit)."""
    words = line.split()
    if not words:
        return ""
    command, args = words[0].lower(), words[1:]
    # set KEY VALUE (the value may have spaces), get KEY, del KEY
    if command in USAGE and not (len(args) >= 2 if command == "set" else len(args) == 1):
        return USAGE[command]
    notice = location.moved(node) if location is not None else None
    prefix = f"{notice}\n" if notice else ""
    store = client.remote_addr(KVStore, STORE)
    try:
        if command == "set":
            await store.call(Set(args[0], " ".join(args[1:])), timeout=5)
            return prefix + "OK"
        if command == "get":
            value = await store.call(Get(args[0]), timeout=5)  # str | None, for mypy too
            return prefix + (value if value is not None else "(nil)")
        if command == "del":
            deleted = await store.call(Delete(args[0]), timeout=5)
            return prefix + ("OK" if deleted else "(nil)")
    except (ClusterError, RemoteError, TimeoutError) as exc:
        return f"{prefix}error: {exc}"
    if command == "members":
        lines = ["cluster members:"]
        lines += [f"  {n.id} @ {n.addr} [{n.status}]" for n in node.members()]
        return "\n".join(lines)
    if command == "actors":
        lines = ["registered actors:"]
        for name, (node_id, type_name) in node.actors().items():
            lines.append(f"  {name} -> {node_id} ({type_name})")
        return "\n".join(lines)
    if command in ("quit", "exit"):
        return None
    if command == "help":
        return HELP
    return f"unknown command {words[0]!r}; {HELP}"


def _pump_stdin(token: EventLoopToken, send: MemoryObjectSendStream[str]) -> None:
    """Read stdin lines in a daemon thread (a blocked read must not keep the process alive at
    exit, as a worker thread would) and hand them to the event loop."""
    try:
        for line in sys.stdin:
            anyio.from_thread.run_sync(send.send_nowait, line, token=token)
        anyio.from_thread.run_sync(send.close, token=token)
    except (anyio.RunFinishedError, anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass  # the node is shutting down


async def read_commands(
    node: ClusterNode, client: ClusterClient, interactive: bool, location: StoreLocation
) -> None:
    """Read and run commands from stdin until ``quit`` (or end of input when interactive)."""
    send, receive = anyio.create_memory_object_stream[str](math.inf)
    token = anyio.lowlevel.current_token()
    threading.Thread(target=_pump_stdin, args=(token, send), daemon=True).start()
    async with receive:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            try:
                line = await receive.receive()
            except anyio.EndOfStream:
                if interactive:
                    return
                await anyio.sleep_forever()  # a server fed from /dev/null: keep serving
            output = await run_command(line, node, client, location)
            if output is None:
                return
            if interactive:
                if output:
                    print(output, flush=True)
            else:
                # For programs driving the node: a blank line ends each command's output.
                print(f"{output}\n", flush=True)


async def main(args: argparse.Namespace) -> None:
    # Open before anything else, so that Ctrl-C during the start is a clean stop as well (it
    # is handled once the node is up).
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        await run_node(args, signals)


async def run_node(args: argparse.Namespace, signals: AsyncIterator[int]) -> None:
    port = args.port if args.port is not None else 7000 + int(args.node_id.rpartition("-")[2])
    addr = f"{args.host}:{port}"
    seeds = [args.seed] if args.seed else []
    async with (
        ActorSystem() as system,
        ClusterNode(
            args.node_id,
            addr,
            seeds=seeds,
            gossip_interval=args.gossip_interval,
            suspect_timeout=args.suspect_timeout,
        ) as node,
    ):
        location = StoreLocation()
        node.subscribe(system.spawn(EventPrinter(sys.stdin.isatty(), node, location)))
        await node.serve(STORE, system.spawn(KVStore()))  # registered as "KVStore"
        location.moved(node)  # where it is now
        print(f"{args.node_id} listening on {addr}", flush=True)
        client = ClusterClient(node)
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    break
                tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            await read_commands(node, client, sys.stdin.isatty(), location)
            tg.cancel_scope.cancel()
        print(f"{args.node_id} leaving the cluster", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A node of the distributed key-value store.")
    parser.add_argument("node_id", help="this node's id, e.g. node-1")
    parser.add_argument("seed", nargs="?", help="address of a node to join, e.g. 127.0.0.1:7001")
    parser.add_argument("--host", default="127.0.0.1", help="host to listen on and advertise")
    parser.add_argument("--port", type=int, help="port (default: 7000 + the id's number)")
    parser.add_argument("--gossip-interval", type=float, default=0.5, help="seconds per round")
    parser.add_argument(
        "--suspect-timeout", type=float, default=5.0, help="seconds without news until Suspect"
    )
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(argv)
    if args.port is None and not args.node_id.rpartition("-")[2].isdigit():
        parser.error("give --port, or an id ending in a number (node-1 listens on 7001)")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    try:
        anyio.run(main, arguments, backend=arguments.backend)
    except* KeyboardInterrupt:  # Ctrl-C before the signal receiver is open (on trio, grouped)
        sys.exit("interrupted")
    except* OSError as group:  # e.g. the port is taken
        sys.exit(f"error: {group.exceptions[0]}")
