"""``python -m cinema.dashboard --seed HOST:PORT``: the dashboard of a running cluster."""

from __future__ import annotations

import argparse
import os
import sys

import anyio

from ._app import DEFAULT_PORT, Dashboard, DashboardError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cinema-dashboard", description="A live, read-only web view of a Cinema cluster."
    )
    parser.add_argument(
        "--seed",
        action="append",
        required=True,
        help="address of a node of the cluster (host:port); repeat for more",
    )
    parser.add_argument("--host", default="127.0.0.1", help="serve the page here (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")
    parser.add_argument(
        "--secret-env",
        default="CINEMA_SECRET",
        help="environment variable holding the cluster's secret (CINEMA_SECRET)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a secret",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    secret = os.environ.get(args.secret_env) or None
    dashboard = Dashboard(
        args.seed,
        host=args.host,
        port=args.port,
        secret=secret,
        insecure=args.insecure,
        interval=args.interval,
    )
    async with dashboard:
        print(f"cinema dashboard at {dashboard.url} (watching {', '.join(args.seed)})", flush=True)
        await anyio.sleep_forever()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        anyio.run(_serve, args)
    except DashboardError as exc:
        print(f"cinema-dashboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
