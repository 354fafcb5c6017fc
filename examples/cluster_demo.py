"""The whole stack in one command: a three-node cluster of separate processes.

    python examples/cluster_demo.py

Starts three processes of the distributed key-value store (``examples/distributed-kv``) on free
loopback ports: node-1 first, then node-2 and node-3 joining through it. Waits until every node
sees all three Up, stores a key through node-2 and reads it back through node-3 (each call goes
through the cluster registry to the node that hosts the store), kills node-3 with SIGKILL and
shows the survivors marking it Suspect, then Down, then stops the other two gracefully. Exits 0
when everything happened as described, 1 otherwise. Takes about ten seconds.

While it runs, the cluster's dashboard (``cinema-dashboard``) is served on loopback: the demo
prints its address; open it to watch the members go Up, then node-3 Suspect and Down.

Options: ``--base-port N`` uses ports N, N+1, N+2 instead of free ephemeral ones;
``--gossip-interval`` and ``--suspect-timeout`` tune the failure detector (Suspect after the
timeout, Down after twice it); ``--dashboard-port`` serves the dashboard on that port (default: a
free one), ``--no-dashboard`` not at all.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

KV_MAIN = Path(__file__).resolve().parent / "distributed-kv" / "main.py"


class DemoFailed(Exception):
    """Something did not happen as the demo expects."""


def free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on right now (the OS picks them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class KvProcess:
    """One node of the key-value store, as a child process driven through stdin/stdout."""

    def __init__(self, node_id: str, port: int, seed: str | None, options: list[str]) -> None:
        self.node_id = node_id
        self.addr = f"127.0.0.1:{port}"
        self._argv = [sys.executable, str(KV_MAIN), node_id]
        if seed:
            self._argv.append(seed)
        self._argv += ["--port", str(port), *options]
        self._process: Process | None = None
        self.lines: list[str] = []  # everything it printed, in order
        self._new_line = anyio.Event()
        self._closed = False

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._process = await anyio.open_process(self._argv, stderr=None)
        tg.start_soon(self._read)
        await self.wait_for(lambda line: line.endswith(f"listening on {self.addr}"), timeout=20)

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        stream = BufferedByteReceiveStream(self._process.stdout)
        try:
            while True:
                raw = await stream.receive_until(b"\n", 65536)
                self.lines.append(raw.decode())
                self._new_line.set()
                self._new_line = anyio.Event()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            self._closed = True
            self._new_line.set()

    async def wait_for(
        self, predicate: Callable[[str], bool], *, timeout: float, start: int = 0
    ) -> int:
        """Wait for an output line (from index ``start``) that satisfies ``predicate``;
        return its index."""
        with anyio.move_on_after(timeout):
            index = start
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return index
                    index += 1
                if self._closed:
                    break
                await self._new_line.wait()
        raise DemoFailed(f"{self.node_id}: no expected output within {timeout} s")

    async def command(self, text: str, *, timeout: float = 10.0) -> list[str]:
        """Run one command; return its output lines (membership event lines left out)."""
        assert self._process is not None
        assert self._process.stdin is not None
        start = len(self.lines)
        await self._process.stdin.send(f"{text}\n".encode())
        end = await self.wait_for(lambda line: line == "", timeout=timeout, start=start)
        return [line for line in self.lines[start:end] if not line.startswith("[cluster]")]

    async def members(self) -> dict[str, str]:
        """node id -> status, as this node sees them."""
        found = {}
        for line in await self.command("members"):
            match = re.match(r"\s+(\S+) @ \S+ \[(\w+)\]", line)
            if match:
                found[match[1]] = match[2]
        return found

    def kill(self) -> None:
        """SIGKILL: the node dies without a word to its peers."""
        self.send_signal(signal.SIGKILL)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send the node's process a signal (SIGSTOP / SIGCONT pause and resume it)."""
        assert self._process is not None
        self._process.send_signal(sig)

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (the node leaves the cluster gracefully); return its exit code."""
        process = self._process
        if process is None:
            return 0
        if process.returncode is None:
            process.terminate()
        with anyio.move_on_after(timeout):
            return await process.wait()
        process.kill()
        return await process.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is not None:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await process.aclose()


def line_is(text: str) -> Callable[[str], bool]:
    """A predicate for :meth:`KvProcess.wait_for`: the line is exactly ``text``."""
    return lambda line: line == text


async def expect(node: KvProcess, command: str, answer: str, *, within: float = 10.0) -> None:
    """Run ``command`` on ``node`` until it answers ``answer`` (a busy machine can make a node
    briefly unreachable: a call then answers ``error: ...`` and is tried again)."""
    deadline = time.monotonic() + within
    while True:
        reply = await node.command(command)
        if reply == [answer]:
            say(f"  {node.node_id}> {command:<16} ->  {answer}")
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"{command!r} through {node.node_id} answered {reply}")
        await anyio.sleep(0.2)


def say(text: str) -> None:
    print(text, flush=True)


async def wait_for_members(
    node: KvProcess, expected: dict[str, str], *, timeout: float = 20.0
) -> dict[str, str]:
    """Ask ``node`` for its members until it shows ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await node.members()
        if seen == expected:
            return seen
        if time.monotonic() > deadline:
            raise DemoFailed(f"{node.node_id} sees {seen}, expected {expected}")
        await anyio.sleep(0.2)


@asynccontextmanager
async def dashboard_for(seed: str, args: argparse.Namespace) -> AsyncIterator[str | None]:
    """The cluster's dashboard while the demo runs; yields its address (None if not served)."""
    if args.no_dashboard:
        yield None
        return
    try:
        from cinema.dashboard import Dashboard
    except ImportError:  # cinema-dashboard is not installed: the demo runs without it
        yield None
        return
    async with Dashboard([seed], port=args.dashboard_port, interval=0.25) as dashboard:
        yield dashboard.url


async def run_demo(args: argparse.Namespace) -> None:
    ports = [args.base_port + i for i in range(3)] if args.base_port is not None else free_ports(3)
    options = [
        "--gossip-interval",
        str(args.gossip_interval),
        "--suspect-timeout",
        str(args.suspect_timeout),
    ]
    seed = f"127.0.0.1:{ports[0]}"
    nodes = [
        KvProcess("node-1", ports[0], None, options),
        KvProcess("node-2", ports[1], seed, options),
        KvProcess("node-3", ports[2], seed, options),
    ]
    n1, n2, n3 = nodes
    began = time.monotonic()
    async with n1, n2, n3, anyio.create_task_group() as tg, dashboard_for(seed, args) as url:
        say("== 1. Start three nodes, each its own process ==")
        if url is not None:
            say(f"  dashboard (live while the demo runs): {url}")
        await n1.start(tg)
        say(f"  node-1 is serving on {n1.addr}")
        for node in (n2, n3):
            await node.start(tg)
            say(f"  {node.node_id} is serving on {node.addr}, joining through {seed}")

        say("\n== 2. Gossip spreads the membership ==")
        all_up = {"node-1": "Up", "node-2": "Up", "node-3": "Up"}
        for node in nodes:
            await wait_for_members(node, all_up)
        say(f"  every node sees all three Up ({time.monotonic() - began:.1f} s after start):")
        for line in await n1.command("members"):
            say(f"  {line}")

        say("\n== 3. Location-transparent messaging through the cluster registry ==")
        for line in await n3.command("actors"):
            say(f"  {line}")
        await expect(n2, "set user:1 alice", "OK")
        await expect(n3, "get user:1", "alice")

        say("\n== 4. Failure detection: SIGKILL node-3 ==")
        marks = [len(n1.lines), len(n2.lines)]
        killed = time.monotonic()
        n3.kill()
        say(
            f"  node-3 killed; Suspect expected after {args.suspect_timeout:g} s"
            f" and Down after {2 * args.suspect_timeout:g} s without news"
        )
        limit = 4 * args.suspect_timeout + 5
        for status in ("Suspect", "Down"):
            for survivor, mark in zip((n1, n2), marks, strict=True):
                await survivor.wait_for(
                    line_is(f"[cluster] node-3 is {status}"), timeout=limit, start=mark
                )
            say(f"  node-1 and node-2 see node-3 {status} ({time.monotonic() - killed:.1f} s)")
        for line in await n1.command("members"):
            say(f"  {line}")
        await expect(n2, "get user:1", "alice")
        say("  (the store lives on node-1, so the data survived node-3)")

        say("\n== 5. Graceful shutdown: node-2 leaves, then node-1 ==")
        code = await n2.stop()
        await n1.wait_for(lambda line: line == "[cluster] node-2 is Left", timeout=10)
        say("  node-1 sees node-2 Left")
        code |= await n1.stop()
        if code != 0:
            raise DemoFailed(f"a node exited with status {code}")
        tg.cancel_scope.cancel()
    say(
        f"\nDone in {time.monotonic() - began:.1f} s: membership, registry, calls and failure"
        " detection all worked."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Three-node Cinema cluster demo.")
    parser.add_argument("--base-port", type=int, help="use ports N..N+2 (default: free ports)")
    parser.add_argument("--gossip-interval", type=float, default=0.2)
    parser.add_argument("--suspect-timeout", type=float, default=1.0)
    parser.add_argument("--dashboard-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        anyio.run(run_demo, args)
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
