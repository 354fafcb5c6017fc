"""Real processes: three nodes of examples/distributed-kv, driven like the README demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the demo's helpers are imported as examples.cluster_demo

from examples.cluster_demo import KvProcess, expect, free_ports, wait_for_members  # noqa: E402

OPTIONS = ["--gossip-interval", "0.1", "--suspect-timeout", "0.5"]


@pytest.mark.anyio
async def test_three_processes_membership_calls_and_failure_detection() -> None:
    ports = free_ports(3)
    seed = f"127.0.0.1:{ports[0]}"
    n1 = KvProcess("node-1", ports[0], None, OPTIONS)
    n2 = KvProcess("node-2", ports[1], seed, OPTIONS)
    n3 = KvProcess("node-3", ports[2], seed, OPTIONS)
    async with n1, n2, n3, anyio.create_task_group() as tg:
        for node in (n1, n2, n3):
            await node.start(tg)
        all_up = {"node-1": "Up", "node-2": "Up", "node-3": "Up"}
        for node in (n1, n2, n3):
            assert await wait_for_members(node, all_up) == all_up
        assert await n3.command("actors") == [
            "registered actors:",
            "  kv-store -> node-1 (KVStore)",
        ]
        await expect(n3, "set color blue", "OK")
        await expect(n2, "get color", "blue")
        await expect(n2, "get nothing", "(nil)")

        mark = len(n1.lines)
        n2.kill()
        suspect = await n1.wait_for(
            lambda line: line == "[cluster] node-2 is Suspect", timeout=10, start=mark
        )
        down = await n1.wait_for(
            lambda line: line == "[cluster] node-2 is Down", timeout=10, start=mark
        )
        assert suspect < down
        await n3.wait_for(lambda line: line == "[cluster] node-2 is Down", timeout=10)
        assert (await n3.members())["node-2"] == "Down"
        await expect(n3, "get color", "blue")
        assert await n3.stop() == 0
        assert await n1.stop() == 0
        tg.cancel_scope.cancel()


def test_the_cluster_demo_runs_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "cluster_demo.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for text in (
        "every node sees all three Up",
        "kv-store -> node-1 (KVStore)",
        "node-2> set user:1 alice ->  OK",
        "node-3> get user:1       ->  alice",
        "node-2> get user:1       ->  alice",
        "see node-3 Suspect",
        "see node-3 Down",
        "node-3 @ 127.0.0.1:",
        "node-1 sees node-2 Left",
        "Done in",
    ):
        assert text in out, out
    assert out.index("see node-3 Suspect") < out.index("see node-3 Down")
