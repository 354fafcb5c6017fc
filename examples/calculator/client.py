"""Calculator client: adds (or, for negative numbers, subtracts) each argument remotely.

    python examples/calculator/client.py 127.0.0.1:8080 5 -2 [--secret S] [--backend trio]

Options may come anywhere among the numbers. Every failure (no server at the address, secrets
that differ, a request the calculator failed on) is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

import anyio

# `python examples/calculator/client.py` puts this folder, not the repository root, on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cinema import CinemaError
from cinema.remote import AuthenticationError, RemoteClient, RemoteHandlerError, TcpTransport
from examples.calculator.server import Add, Calculator, GetValue, Subtract


class Failed(Exception):
    """What went wrong, in one line for the user."""


async def run(address: str, numbers: list[int], secret: str | None) -> None:
    try:
        conn = await TcpTransport().connect(address)
    except OSError as exc:
        raise Failed(f"cannot connect to {address}: {connect_error(exc)}") from None
    async with RemoteClient(conn, secret=secret) as client:
        calc = client.remote_addr(Calculator, "calc-server", "calculator")
        for n in numbers:
            try:
                if n >= 0:
                    value = await calc.call(Add(n), timeout=10)  # an int, for mypy too
                    print(f"+{n} -> {value}", flush=True)
                else:
                    value = await calc.call(Subtract(-n), timeout=10)
                    print(f"-{-n} -> {value}", flush=True)
            except RemoteHandlerError as exc:
                raise Failed(f"the calculator failed on {n:+}: {exc}") from None
        print(f"total {await calc.call(GetValue(), timeout=10)}")


def connect_error(exc: OSError) -> str:
    """Why a connection failed, in words (asyncio and trio word it differently)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, ConnectionRefusedError) or cause.errno == errno.ECONNREFUSED:
        return "connection refused (is the server running?)"
    return os.strerror(cause.errno) if cause.errno else str(cause)


def int32(text: str) -> int:
    n = int(text)
    if not -(2**31) < n < 2**31:
        raise argparse.ArgumentTypeError(f"{text} is not a 32-bit integer")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description="Cinema remote calculator client")
    parser.add_argument("address", help="host:port of the server")
    parser.add_argument("numbers", type=int32, nargs="*")
    parser.add_argument("--secret", help="the shared secret the server requires")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_intermixed_args()  # options anywhere, also between the numbers
    try:
        anyio.run(run, args.address, args.numbers, args.secret, backend=args.backend)
    except Failed as exc:
        sys.exit(f"error: {exc}")
    except AuthenticationError as exc:
        sys.exit(f"error: {args.address} refused the connection: {exc}")
    except (CinemaError, TimeoutError) as exc:
        sys.exit(f"error: {exc or type(exc).__name__}")
    except KeyboardInterrupt:
        sys.exit("interrupted")


if __name__ == "__main__":
    main()
