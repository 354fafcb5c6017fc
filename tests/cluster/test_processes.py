"""Real processes: three nodes of examples/distributed-kv, driven like the README demo."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the demo's helpers are imported as examples.cluster_demo

from examples.cluster_demo import (  # noqa: E402
    KvProcess,
    expect,
    free_ports,
    line_is,
    wait_for_members,
)

OPTIONS = ["--gossip-interval", "0.1", "--suspect-timeout", "0.5"]
# The nodes under test are the child processes: each test runs once per backend they run on
# (examples/distributed-kv's --backend); the harness that drives them runs on asyncio.
CHILD_BACKENDS = pytest.mark.parametrize("child_backend", ["asyncio", "trio"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@CHILD_BACKENDS
async def test_three_processes_membership_calls_and_failure_detection(child_backend: str) -> None:
    ports = free_ports(3)
    seed = f"127.0.0.1:{ports[0]}"
    options = [*OPTIONS, "--backend", child_backend]
    n1 = KvProcess("node-1", ports[0], None, options)
    n2 = KvProcess("node-2", ports[1], seed, options)
    n3 = KvProcess("node-3", ports[2], seed, options)
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


@pytest.mark.anyio
@CHILD_BACKENDS
async def test_a_paused_process_coming_back_marks_no_healthy_node_down(child_backend: str) -> None:
    ports = free_ports(4)
    seed = f"127.0.0.1:{ports[0]}"
    options = [*OPTIONS, "--backend", child_backend]
    nodes = [
        KvProcess(f"node-{i + 1}", port, None if i == 0 else seed, options)
        for i, port in enumerate(ports)
    ]
    async with nodes[0], nodes[1], nodes[2], nodes[3], anyio.create_task_group() as tg:
        for node in nodes:
            await node.start(tg)
        all_up = {n.node_id: "Up" for n in nodes}
        for node in nodes:
            assert await wait_for_members(node, all_up) == all_up
        paused = nodes[2]
        marks = [len(n.lines) for n in nodes]
        paused.send_signal(signal.SIGSTOP)
        for node, mark in zip(nodes, marks, strict=True):
            if node is not paused:
                await node.wait_for(
                    lambda line: line == "[cluster] node-3 is Down", timeout=20, start=mark
                )
        paused.send_signal(signal.SIGCONT)  # it comes back having timed everyone out
        for node in nodes:
            assert await wait_for_members(node, all_up) == all_up
        await anyio.sleep(2.0)  # 20 rounds, 4 suspect timeouts: time to make any mistake
        for node, mark in zip(nodes, marks, strict=True):
            false_down = [
                line
                for line in node.lines[mark:]
                if line.endswith(" is Down") and "node-3" not in line
            ]
            assert false_down == [], node.node_id
        for node in nodes:
            assert await node.stop() == 0
        tg.cancel_scope.cancel()


KV_MAIN = ROOT / "examples" / "distributed-kv" / "main.py"


# The driver runs on asyncio; the program runs on the backend under test.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_usage_errors_and_a_notice_when_the_store_moves_to_an_empty_node(
    backend: str,
) -> None:
    ports = free_ports(2)
    options = [*OPTIONS, "--backend", backend]
    n1 = KvProcess("node-1", ports[0], None, options)
    n2 = KvProcess("node-2", ports[1], f"127.0.0.1:{ports[0]}", options)
    async with n1, n2, anyio.create_task_group() as tg:
        for node in (n1, n2):
            await node.start(tg)
        both_up = {"node-1": "Up", "node-2": "Up"}
        assert await wait_for_members(n2, both_up) == both_up
        for command, usage in [
            ("set", "usage: set KEY VALUE"),
            ("set color", "usage: set KEY VALUE"),
            ("get", "usage: get KEY"),
            ("get a b", "usage: get KEY"),
            ("del", "usage: del KEY"),
        ]:
            assert await n2.command(command) == [usage]
        unknown = await n2.command("frobnicate now")
        assert unknown[0] == "unknown command 'frobnicate'; commands:", unknown
        assert "  set KEY VALUE   store a value" in unknown

        await expect(n2, "set color deep blue", "OK")  # a value may have spaces
        await expect(n2, "get color", "deep blue")
        mark = len(n2.lines)
        n1.kill()  # the store (node-1's) and its data die with it
        await n2.wait_for(
            line_is("[cluster] kv-store moved to node-2 (node-1 is Down): it starts empty"),
            timeout=20,
            start=mark,
        )
        await expect(n2, "get color", "(nil)")
        notices = [line for line in n2.lines if "moved to" in line]
        assert len(notices) == 1, n2.lines  # said once, and never while gossip arrived
        assert await n2.stop() == 0
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_on_a_node_is_one_line(backend: str) -> None:
    (port,) = free_ports(1)
    node = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error",
            str(KV_MAIN),
            "node-1",
            "--port",
            str(port),
            "--backend",
            backend,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        assert node.stdout.readline() == f"node-1 listening on 127.0.0.1:{port}\n"
        node.send_signal(signal.SIGINT)
        out, err = node.communicate(timeout=30)
    finally:
        if node.poll() is None:
            node.kill()
            node.communicate()
    assert node.returncode == 0, err
    assert err == ""
    assert out == "node-1 leaving the cluster\n"


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
