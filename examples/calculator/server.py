"""Calculator server: a remote actor holding a running total, served over TCP.

Run from the repository root (so that ``examples.calculator`` is importable)::

    python -m examples.calculator.server --port 8080
    python -m examples.calculator.client 127.0.0.1:8080 5 -2

The server prints ``listening on HOST:PORT`` once it accepts connections and stops cleanly on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Context, handler
from cinema.remote import LocalNode, MessageRouter, RemoteServer
from examples.calculator.calculator_pb2 import Add, GetValue, Subtract, Value


class Calculator(Actor):
    def __init__(self) -> None:
        self.value = 0

    @handler
    def add(self, msg: Add, ctx: Context[Self]) -> Value:
        self.value += msg.n
        return Value(value=self.value)

    @handler
    def subtract(self, msg: Subtract, ctx: Context[Self]) -> Value:
        self.value -= msg.n
        return Value(value=self.value)

    @handler
    def get_value(self, msg: GetValue, ctx: Context[Self]) -> Value:
        return Value(value=self.value)


async def serve(host: str, port: int, secret: str | None) -> None:
    async with ActorSystem() as system:
        calc = system.spawn(Calculator())
        node = LocalNode("calc-server")
        node.expose("calculator", calc)
        router = (
            MessageRouter()
            .route(Add, node.handler(calc, Add))
            .route(Subtract, node.handler(calc, Subtract))
            .route(GetValue, node.handler(calc, GetValue))
            .build()
        )
        server = await RemoteServer.bind(f"{host}:{port}", router, secret=secret)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
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
    args = parser.parse_args()
    anyio.run(serve, args.host, args.port, args.secret)


if __name__ == "__main__":
    main()
