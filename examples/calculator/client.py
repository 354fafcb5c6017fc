"""Calculator client: adds (or, for negative numbers, subtracts) each argument remotely.

python -m examples.calculator.client 127.0.0.1:8080 5 -2
"""

from __future__ import annotations

import argparse

import anyio

from cinema.remote import RemoteClient, TcpTransport, rpc
from examples.calculator.calculator_pb2 import Add, GetValue, Subtract, Value
from examples.calculator.server import Calculator

# The reply type of each request, so that `call` returns a typed Value.
ADD = rpc(Add, Value)
SUBTRACT = rpc(Subtract, Value)
GET_VALUE = rpc(GetValue, Value)


async def run(address: str, numbers: list[int], secret: str | None) -> None:
    conn = await TcpTransport().connect(address)
    async with RemoteClient(conn, secret=secret) as client:
        calc = client.remote_addr(Calculator, "calc-server", "calculator")
        for n in numbers:
            if n >= 0:
                result = await calc.call(ADD, Add(n=n), timeout=10)
                print(f"+{n} -> {result.value}")
            else:
                result = await calc.call(SUBTRACT, Subtract(n=-n), timeout=10)
                print(f"-{-n} -> {result.value}")
        total = await calc.call(GET_VALUE, GetValue(), timeout=10)
        print(f"total {total.value}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Cinema remote calculator client")
    parser.add_argument("address", help="host:port of the server")
    parser.add_argument("numbers", type=int, nargs="*")
    parser.add_argument("--secret")
    args = parser.parse_args()
    anyio.run(run, args.address, args.numbers, args.secret)


if __name__ == "__main__":
    main()
