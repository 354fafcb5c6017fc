"""Calculator server: a remote actor holding a running total, served over TCP.

The messages are plain dataclasses, the same classes the client sends: ``Add(n)`` is a
``Message[int]``, so ``await remote.call(Add(5))`` is an ``int`` for mypy on the client, as
``await addr.send(Add(5))`` is locally. ``node.serve("calculator", calc)`` accepts every type
the actor handles (and nothing else); ``RemoteServer.bind`` takes the node as its handler.

Run it from any directory (``python -m examples.calculator.server`` from the repository root
works too)::

    python examples/calculator/server.py --port 8080
    python examples/calculator/client.py 127.0.0.1:8080 5 -2

The server prints ``listening on HOST:PORT`` once it accepts connections, logs every failure
of the calculator, and stops cleanly on Ctrl-C or SIGTERM (``--backend trio`` runs it on trio).

Why it is supervised: a handler that raises fails its actor. The total is a 32-bit register,
so a total past 2**31 - 1 (``client.py HOST:PORT 2147483647 1``) makes ``add`` raise
``OverflowError``.
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
from dataclasses import dataclass
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Context, Message, SupervisorStrategy, handler
from cinema.remote import LocalNode, RemoteServer

#: Failures tolerated per minute before the calculator stops for good (a crash loop).
MAX_RESTARTS = 100
INT32 = range(-(2**31), 2**31)

# -- messages: Message[R] names the reply type, locally and remotely -------------------------


@dataclass
class Add(Message[int]):
    n: int


@dataclass
class Subtract(Message[int]):
    n: int


@dataclass
class GetValue(Message[int]):
    pass


class Calculator(Actor):
    def __init__(self) -> None:
        self.value = 0

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> int:
        self.value += msg.n
        return self.checked()

    @handler
    def subtract(self, msg: Subtract, ctx: Context[Self]) -> int:
        self.value -= msg.n
        return self.checked()

    @handler
    def get_value(self, msg: GetValue, ctx: Context[Self]) -> int:
        return self.value

    def checked(self) -> int:
        if self.value not in INT32:  # the handler raises: the actor fails
            raise OverflowError(f"{self.value} does not fit the calculator's 32 bits")
        return self.value


async def serve(host: str, port: int, secret: str | None) -> None:
    async with ActorSystem() as system:
        calc = system.spawn_with_strategy(
            Calculator, SupervisorStrategy.restart(MAX_RESTARTS, within=60.0)
        )
        node = LocalNode("calc-server")
        node.serve("calculator", calc)  # every message type Calculator handles
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            server = await RemoteServer.bind(f"{host}:{port}", node, secret=secret)
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
