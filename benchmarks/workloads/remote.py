"""Remote ask between two processes over loopback: Cinema beside raw length-prefixed streams.

Each workload starts a server process (``python -m benchmarks.workloads.remote serve-raw`` or
``serve-cinema``) and times requests from this process:

- ``raw_*`` (baseline): asyncio streams, a 4-byte big-endian length prefix, the server echoes
  each frame back; no framework, no protobuf. Pipelined keeps 64 frames outstanding on one
  connection (the best a hand-written client can do).
- ``cinema_*``: ``RemoteAddr.call`` to an actor in the server process (protobuf envelope,
  correlation ids, routing, actor mailbox, typed decode). Pipelined runs 64 tasks calling
  concurrently on one ``RemoteClient``.
- ``cinema_dataclass_*``: the same call with a dataclass ``Message[R]`` (``EchoValue``, one int
  field, encoded by the msgspec serializer) instead of the protobuf message, against the same
  server actor (served by name with ``LocalNode.serve``); compared with ``cinema_*``.
- ``codec_*``: encoding and decoding the message alone, protobuf and msgspec, per second.

The payload is an 8-byte protobuf ``Int64Value`` for Cinema and 16 bytes for raw (about the size
of a Cinema request body), so that the comparison is about per-message overhead.

Each runs on asyncio, asyncio+uvloop and trio (server and client on the same event loop); the
raw baseline on trio uses trio's own streams. With ``CINEMA_BENCH_OTHER_SRC`` set to another
checkout's ``packages`` directory (e.g. of ``main``), ``cinema_*_other[...]`` workloads run the
same Cinema client and server from that code, in the same run: before/after ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Self

from google.protobuf.wrappers_pb2 import Int64Value

from benchmarks.harness import (
    Metrics,
    Target,
    Workload,
    fastest_rate,
    fastest_rate_async,
    run_anyio,
    run_asyncio,
)
from cinema import Actor, Context, Message, handler

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = 64
HEADER = struct.Struct(">I")
RAW_PAYLOAD = b"x" * 16


# -- server processes ------------------------------------------------------------------------


#: Another checkout's ``packages`` directory, to measure its Cinema beside this one.
OTHER_SRC_ENV = "CINEMA_BENCH_OTHER_SRC"
BACKENDS = ("asyncio", "asyncio+uvloop", "trio")


def _env(src: str | None) -> dict[str, str] | None:
    if src is None:
        return None
    paths = [str(Path(src) / name / "src") for name in ("cinema-core", "cinema-remote")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    return env


@contextmanager
def server_process(kind: str, backend: str, src: str | None = None) -> Iterator[tuple[str, int]]:
    """Start ``serve-<kind>`` in a subprocess; yield its (host, port); stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.workloads.remote", f"serve-{kind}", backend],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(src),
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


def _take_frames(buffer: bytearray) -> int:
    """How many bytes at the start of ``buffer`` are whole frames."""
    end = 0
    while len(buffer) - end >= 4:
        size = 4 + HEADER.unpack_from(buffer, end)[0]
        if len(buffer) - end < size:
            break
        end += size
    return end


async def _serve_raw_trio() -> None:
    import trio

    async def echo(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        with contextlib.suppress(trio.BrokenResourceError):
            while data := await stream.receive_some(65536):
                buffer += data
                end = _take_frames(buffer)
                if end:
                    out = bytes(buffer[:end])
                    del buffer[:end]
                    await stream.send_all(out)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(f"127.0.0.1:{listeners[0].socket.getsockname()[1]}", flush=True)
    await trio.serve_listeners(echo, listeners)


@dataclass
class EchoValue(Message["EchoValue"]):
    """The dataclass twin of ``Int64Value``: one int field, and a reply of its own type (the
    payload for 42: 8 bytes of MessagePack ``{"value": 42}``; protobuf's ``Int64Value``: 2)."""

    value: int


class Echo(Actor):
    """The server's actor: answers each request with the request."""

    @handler
    def echo(self, msg: Int64Value, ctx: Context[Self]) -> Int64Value:
        return msg

    @handler
    def echo_value(self, msg: EchoValue, ctx: Context[Self]) -> EchoValue:
        return msg


async def _serve_cinema() -> None:  # on any backend (anyio)
    from cinema import ActorSystem
    from cinema.remote import LocalNode, RemoteHandler, RemoteServer

    async with ActorSystem() as system:
        node = LocalNode("bench")
        addr = system.spawn(Echo())
        handler_: RemoteHandler
        if hasattr(node, "serve"):
            node.serve("echo", addr)  # both message types, by name
            handler_ = node
        else:  # another checkout from before LocalNode.serve (CINEMA_BENCH_OTHER_SRC)
            handler_ = node.handler(addr, Int64Value)
        async with await RemoteServer.bind("127.0.0.1:0", handler_) as server:
            print(server.address, flush=True)
            import anyio

            await anyio.sleep_forever()


# -- raw clients -----------------------------------------------------------------------------


async def _raw(n: int, *, pipelined: bool, backend: str) -> Metrics:
    with server_process("raw", backend) as (host, port):
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


async def _raw_trio(n: int, *, pipelined: bool) -> Metrics:
    import trio

    with server_process("raw", "trio") as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        frame = HEADER.pack(len(RAW_PAYLOAD)) + RAW_PAYLOAD
        buffer = bytearray()

        async def responses(count: int) -> None:
            # Whole frames, ``count`` of them at most (a reply is exactly one frame here).
            got = 0
            while got < count:
                end = _take_frames(buffer)
                if end:
                    got += end // len(frame)
                    del buffer[:end]
                    continue
                buffer.extend(await stream.receive_some(65536))

        async def sequential(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                await stream.send_all(frame)
                await responses(1)
            return time.perf_counter() - start

        async def window(k: int) -> float:
            # 64 outstanding: send a frame for every reply that comes back.
            start = time.perf_counter()
            outstanding = min(IN_FLIGHT, k)
            await stream.send_all(frame * outstanding)
            sent, done = outstanding, 0
            while done < k:
                while not (end := _take_frames(buffer)):
                    buffer.extend(await stream.receive_some(65536))
                del buffer[:end]
                replies = end // len(frame)
                done += replies
                more = min(replies, k - sent)
                if more:
                    sent += more
                    await stream.send_all(frame * more)
            return time.perf_counter() - start

        rate = await fastest_rate_async(window if pipelined else sequential, n)
        await stream.aclose()
    return {"requests_per_s": rate}


def _raw_run(n: int, *, pipelined: bool, backend: str) -> Metrics:
    if backend == "trio":
        import trio

        return trio.run(partial(_raw_trio, n, pipelined=pipelined))
    return run_asyncio(partial(_raw, n, pipelined=pipelined, backend=backend), backend)


# -- cinema client ---------------------------------------------------------------------------


async def _cinema(
    n: int, *, pipelined: bool, backend: str, src: str | None = None, with_dataclass: bool = False
) -> Metrics:
    import anyio

    from cinema.remote import RemoteClient, TcpTransport, rpc

    echo = rpc(Int64Value, Int64Value)
    message = Int64Value(value=42)
    value = EchoValue(42)

    with server_process("cinema", backend, src) as (host, port):
        conn = await TcpTransport().connect(f"{host}:{port}")
        async with RemoteClient(conn) as client:
            remote = client.remote_addr(Echo, "bench", "echo")

            if with_dataclass:

                async def one() -> None:
                    await remote.call(value)  # typed by Message[R]: an EchoValue
            else:

                async def one() -> None:
                    await remote.call(echo, message)

            async def sequential(k: int) -> float:
                start = time.perf_counter()
                for _ in range(k):
                    await one()
                return time.perf_counter() - start

            async def concurrent(k: int) -> float:
                remaining = k

                async def worker() -> None:
                    nonlocal remaining
                    while remaining > 0:
                        remaining -= 1
                        await one()

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for _ in range(IN_FLIGHT):
                        tg.start_soon(worker)
                return time.perf_counter() - start

            rate = await fastest_rate_async(concurrent if pipelined else sequential, n)
    return {"requests_per_s": rate}


def _cinema_run(
    n: int, *, pipelined: bool, backend: str, other: bool = False, with_dataclass: bool = False
) -> Metrics:
    if other:
        # The other checkout's client, in a process of its own (this one imported ours).
        src = os.environ[OTHER_SRC_ENV]
        mode = "pipelined" if pipelined else "sequential"
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.workloads.remote", "client", backend, mode, str(n)],
            cwd=ROOT,
            env=_env(src),
            capture_output=True,
            text=True,
            check=True,
            timeout=170,
        )
        return {"requests_per_s": float(out.stdout.split()[-1])}
    main: Callable[[], Awaitable[Metrics]] = partial(
        _cinema, n, pipelined=pipelined, backend=backend, with_dataclass=with_dataclass
    )
    return run_anyio(main, backend)


def _codec(n: int, *, kind: str) -> Metrics:
    """Encode and decode rates of the benchmark's message alone (the payload, no envelope)."""
    from cinema.remote import MsgspecSerializer

    if kind == "protobuf":
        proto = Int64Value(value=42)
        data = proto.SerializeToString()

        def encode() -> object:
            return proto.SerializeToString()

        def decode() -> object:
            return Int64Value.FromString(data)
    else:
        serializer = MsgspecSerializer()
        value = EchoValue(42)
        data = serializer.encode(value)

        def encode() -> object:
            return serializer.encode(value)

        def decode() -> object:
            return serializer.decode_as(data, EchoValue)

    def timed(op: Callable[[], object]) -> Callable[[int], float]:
        def batch(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                op()
            return time.perf_counter() - start

        return batch

    return {
        "encode_per_s": fastest_rate(timed(encode), n),
        "decode_per_s": fastest_rate(timed(decode), n),
    }


def _workloads() -> list[Workload]:
    found: list[Workload] = []
    other = os.environ.get(OTHER_SRC_ENV)
    for backend in BACKENDS:
        requires: tuple[str, ...] = (
            ("uvloop",) if backend.endswith("uvloop") else ("trio",) if backend == "trio" else ()
        )
        raw_what = "trio streams" if backend == "trio" else f"{backend} streams"
        for pipelined, kind, size, quick in (
            (False, "sequential", 20_000, 3_000),
            (True, "pipelined", 50_000, 5_000),
        ):
            how = f"{IN_FLIGHT} in flight" if pipelined else "sequential round trips"
            raw_id = f"remote.raw_{kind}[{backend}]"
            found.append(
                Workload(
                    name=f"raw_{kind}[{backend}]",
                    title=f"raw {raw_what}, 4-byte length prefix, echo: {how}",
                    run=partial(_raw_run, pipelined=pipelined, backend=backend),
                    size=size * 2 if pipelined else size,
                    quick_size=quick * 2 if pipelined else quick,
                    metrics=("requests_per_s",),
                    group="baseline",
                    backend=backend,
                    requires=requires,
                )
            )
            target = 0.7 if pipelined else 0.8
            # (main before issue 8 cannot run on uvloop at all: no "other" variant there.)
            with_other = other is not None and backend != "asyncio+uvloop"
            variants = [("", False)] + ([("_other", True)] if with_other else [])
            note = {False: "", True: " (other checkout)"}
            for suffix, is_other in variants:
                found.append(
                    Workload(
                        name=f"cinema_{kind}{suffix}[{backend}]",
                        title=f"Cinema remote ask between two processes{note[is_other]}: {how}",
                        run=partial(
                            _cinema_run, pipelined=pipelined, backend=backend, other=is_other
                        ),
                        size=size,
                        quick_size=quick,
                        metrics=("requests_per_s",),
                        backend=backend,
                        requires=("cinema.remote", *requires),
                        compare={"requests_per_s": f"{raw_id}:requests_per_s"},
                        targets={"requests_per_s": Target(">=", target, relative=True)}
                        if backend == "asyncio" and not is_other
                        else {},
                    )
                )
            # The same call with a dataclass Message[R] (msgspec) instead of protobuf.
            found.append(
                Workload(
                    name=f"cinema_dataclass_{kind}[{backend}]",
                    title=f"Cinema remote ask, dataclass message (msgspec): {how}",
                    run=partial(
                        _cinema_run, pipelined=pipelined, backend=backend, with_dataclass=True
                    ),
                    size=size,
                    quick_size=quick,
                    metrics=("requests_per_s",),
                    backend=backend,
                    requires=("cinema.remote:MsgspecSerializer", *requires),
                    compare={"requests_per_s": f"remote.cinema_{kind}[{backend}]:requests_per_s"},
                    targets={"requests_per_s": Target(">=", 0.8, relative=True)},
                )
            )
    for kind in ("protobuf", "msgspec"):
        found.append(
            Workload(
                name=f"codec_{kind}",
                title=f"encode / decode of the ask's message alone ({kind})",
                run=partial(_codec, kind=kind),
                size=500_000,
                quick_size=50_000,
                metrics=("encode_per_s", "decode_per_s"),
                requires=("cinema.remote:MsgspecSerializer",),
                compare={}
                if kind == "protobuf"
                else {
                    "encode_per_s": "remote.codec_protobuf:encode_per_s",
                    "decode_per_s": "remote.codec_protobuf:decode_per_s",
                },
            )
        )
    return found


WORKLOADS = _workloads()


def _client_main(backend: str, mode: str, n: int) -> None:
    """Run one Cinema client measurement here and print its rate (for ``_other`` variants)."""
    metrics = run_anyio(
        partial(_cinema, n, pipelined=mode == "pipelined", backend=backend), backend
    )
    print(metrics["requests_per_s"], flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    backend = sys.argv[2] if len(sys.argv) > 2 else "asyncio"
    if mode == "serve-raw":
        if backend == "trio":
            import trio

            trio.run(_serve_raw_trio)
        else:
            run_asyncio(_serve_raw, backend)
    elif mode == "serve-cinema":
        run_anyio(_serve_cinema, backend)
    elif mode == "client":
        _client_main(backend, sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(
            "usage: python -m benchmarks.workloads.remote serve-raw|serve-cinema|client [backend]"
        )
