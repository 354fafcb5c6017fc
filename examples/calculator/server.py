"""Calculator server: a remote actor holding a running total, served over TCP.

Run it from any directory (``python -m examples.calculator.server`` from the repository root
works too)::

    python examples/calculator/server.py --port 8080
    python examples/calculator/client.py 127.0.0.1:8080 5 -2

The server prints ``listening on HOST:PORT`` once it accepts connections, logs every failure
of the calculator, and stops cleanly on Ctrl-C or SIGTERM (``--backend trio`` runs it on trio).

Why it is supervised: a handler that raises fails its actor. ``Value`` is an ``int32``, so a
total past 2**31 - 1 (``client.py HOST:PORT 2147483647 1``) makes ``add`` raise ``ValueError``.
Unsupervised, that one request would stop the calculator for good and every later client
would get ``ActorStopped``. Spawned with ``SupervisorStrategy.restart``, the failed request's
caller gets the error, the failure is logged here, and a fresh ``Calculator`` from the factory
serves the next request. The fresh instance starts from 0 on purpose: the failed one's total
was already out of range when it raised, and state a failed handler has touched is not
trusted. (State that must survive a failure belongs outside the instance.)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Self

import anyio

# `python examples/calculator/server.py` puts this folder, not the repository root, on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cinema import Actor, ActorSystem, Context, SupervisorStrategy, handler
from cinema.remote import LocalNode, MessageRouter, RemoteServer
from examples.calculator.calculator_pb2 import Add, GetValue, Subtract, Value

#: Failures tolerated per minute before the calculator stops for good (a crash loop).
MAX_RESTARTS = 100


class Calculator(Actor):
    def __init__(self) -> None:
        self.value = 0

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> Value:
        self.value += msg.n
        return Value(value=self.value)  # ValueError past the int32 range: the actor fails

    @handler
    def subtract(self, msg: Subtract, ctx: Context[Self]) -> Value:
        self.value -= msg.n
        return Value(value=self.value)

    @handler
    def get_value(self, msg: GetValue, ctx: Context[Self]) -> Value:
        return Value(value=self.value)


async def serve(host: str, port: int, secret: str | None) -> None:
    async with ActorSystem() as system:
        calc = system.spawn_with_strategy(
            Calculator, SupervisorStrategy.restart(MAX_RESTARTS, within=60.0)
        )
        node = LocalNode("calc-server")
        node.expose("calculator", calc)
        router = (
            MessageRouter()
            .route(Add, node.handler(calc, Add))
            .route(Subtract, node.handler(calc, Subtract))
            .route(GetValue, node.handler(calc, GetValue))
            .build()
        )
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            server = await RemoteServer.bind(f"{host}:{port}", router, secret=secret)
            async with server:
                print(f"listening on {server.address}", flush=True)
                async for _signal in signals:
                    break
        print("server stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Cinema remote calculator server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--secret", help="require this shared secret from clients")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    # Cinema logs every failure (with its traceback) on the `cinema` logger but never
    # configures logging: a server says on its screen what went wrong.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        anyio.run(serve, args.host, args.port, args.secret, backend=args.backend)
    except* OSError as group:  # e.g. the port is taken
        exc = group.exceptions[0]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {reason}")
    except* KeyboardInterrupt:  # Ctrl-C before the signal receiver is open (on trio, grouped)
        sys.exit("interrupted")


if __name__ == "__main__":
    main()
