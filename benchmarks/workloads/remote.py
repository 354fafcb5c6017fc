"""Remote ask between two processes over loopback: Cinema beside raw length-prefixed streams.

Each workload starts a server process (``python -m benchmarks.workloads.remote serve-raw`` or
``serve-cinema``) and times requests from this process:

- ``raw_*`` (baseline): asyncio streams, a 4-byte big-endian length prefix, the server echoes
  each frame back; no framework, no protobuf. Pipelined keeps 64 frames outstanding on one
  connection (the best a hand-written client can do).
- ``cinema_*``: ``RemoteAddr.call`` to an actor in the server process (protobuf envelope,
  correlation ids, routing, actor mailbox, typed decode). Pipelined runs 64 tasks calling
  concurrently on one ``RemoteClient``.

The payload is an 8-byte protobuf ``Int64Value`` for Cinema and 16 bytes for raw (about the size
of a Cinema request body), so that the comparison is about per-message overhead.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Self

from google.protobuf.wrappers_pb2 import Int64Value

from benchmarks.harness import Metrics, Target, Workload, fastest_rate_async, run_anyio, run_asyncio
from cinema import Actor, Context, handler

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = 64
HEADER = struct.Struct(">I")
RAW_PAYLOAD = b"x" * 16


# -- server processes ------------------------------------------------------------------------


@contextmanager
def server_process(kind: str) -> Iterator[tuple[str, int]]:
    """Start ``serve-<kind>`` in a subprocess; yield its (host, port); stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.workloads.remote", f"serve-{kind}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        host, _, port = line.rpartition(":")
        if not port.isdigit():
            raise RuntimeError(f"server {kind} did not start: {line!r}")
        yield host, int(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _serve_raw() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(HEADER.unpack(header)[0])
                writer.write(header + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class Echo(Actor):
    """The server's actor: answers each request with the request."""

    @handler
    def echo(self, msg: Int64Value, ctx: Context[Self]) -> Int64Value:
        return msg


async def _serve_cinema() -> None:
    from cinema import ActorSystem
    from cinema.remote import LocalNode, RemoteServer

    async with ActorSystem() as system:
        node = LocalNode("bench")
        handler_ = node.handler(system.spawn(Echo()), Int64Value)
        async with await RemoteServer.bind("127.0.0.1:0", handler_) as server:
            print(server.address, flush=True)
            import anyio

            await anyio.sleep_forever()


# -- raw client ------------------------------------------------------------------------------


async def _raw(n: int, *, pipelined: bool) -> Metrics:
    with server_process("raw") as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        frame = HEADER.pack(len(RAW_PAYLOAD)) + RAW_PAYLOAD

        async def response() -> None:
            header = await reader.readexactly(4)
            await reader.readexactly(HEADER.unpack(header)[0])

        async def sequential(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                writer.write(frame)
                await response()
            return time.perf_counter() - start

        async def window(k: int) -> float:
            start = time.perf_counter()
            outstanding = min(IN_FLIGHT, k)
            writer.write(frame * outstanding)
            for sent in range(outstanding, k + outstanding):
                await response()
                if sent < k:
                    writer.write(frame)
            return time.perf_counter() - start

        rate = await fastest_rate_async(window if pipelined else sequential, n)
        writer.close()
        await writer.wait_closed()
    return {"requests_per_s": rate}


def _raw_run(n: int, *, pipelined: bool) -> Metrics:
    return run_asyncio(partial(_raw, n, pipelined=pipelined), "asyncio")


# -- cinema client ---------------------------------------------------------------------------


async def _cinema(n: int, *, pipelined: bool) -> Metrics:
    import anyio

    from cinema.remote import RemoteClient, TcpTransport, rpc

    echo = rpc(Int64Value, Int64Value)
    message = Int64Value(value=42)

    with server_process("cinema") as (host, port):
        conn = await TcpTransport().connect(f"{host}:{port}")
        async with RemoteClient(conn) as client:
            remote = client.remote_addr(Echo, "bench", "echo")

            async def sequential(k: int) -> float:
                start = time.perf_counter()
                for _ in range(k):
                    await remote.call(echo, message)
                return time.perf_counter() - start

            async def concurrent(k: int) -> float:
                remaining = k

                async def worker() -> None:
                    nonlocal remaining
                    while remaining > 0:
                        remaining -= 1
                        await remote.call(echo, message)

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for _ in range(IN_FLIGHT):
                        tg.start_soon(worker)
                return time.perf_counter() - start

            rate = await fastest_rate_async(concurrent if pipelined else sequential, n)
    return {"requests_per_s": rate}


def _cinema_run(n: int, *, pipelined: bool) -> Metrics:
    main: Callable[[], Awaitable[Metrics]] = partial(_cinema, n, pipelined=pipelined)
    return run_anyio(main, "asyncio")


WORKLOADS = [
    Workload(
        name="raw_sequential",
        title="raw asyncio streams, 4-byte length prefix, echo: sequential round trips",
        run=partial(_raw_run, pipelined=False),
        size=20_000,
        quick_size=3_000,
        metrics=("requests_per_s",),
        group="baseline",
        backend="asyncio",
    ),
    Workload(
        name="raw_pipelined",
        title=f"raw asyncio streams, 4-byte length prefix, echo: {IN_FLIGHT} in flight",
        run=partial(_raw_run, pipelined=True),
        size=100_000,
        quick_size=10_000,
        metrics=("requests_per_s",),
        group="baseline",
        backend="asyncio",
    ),
    Workload(
        name="cinema_sequential",
        title="Cinema remote ask between two processes: sequential RemoteAddr.call",
        run=partial(_cinema_run, pipelined=False),
        size=20_000,
        quick_size=3_000,
        metrics=("requests_per_s",),
        backend="asyncio",
        requires=("cinema.remote",),
        compare={"requests_per_s": "remote.raw_sequential:requests_per_s"},
        targets={"requests_per_s": Target(">=", 0.7, relative=True)},
    ),
    Workload(
        name="cinema_pipelined",
        title=f"Cinema remote ask between two processes: {IN_FLIGHT} calls in flight",
        run=partial(_cinema_run, pipelined=True),
        size=50_000,
        quick_size=5_000,
        metrics=("requests_per_s",),
        backend="asyncio",
        requires=("cinema.remote",),
        compare={"requests_per_s": "remote.raw_pipelined:requests_per_s"},
        targets={"requests_per_s": Target(">=", 0.5, relative=True)},
    ),
]


if __name__ == "__main__":
    import anyio

    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "serve-raw":
        asyncio.run(_serve_raw())
    elif mode == "serve-cinema":
        anyio.run(_serve_cinema)
    else:
        raise SystemExit("usage: python -m benchmarks.workloads.remote serve-raw|serve-cinema")
