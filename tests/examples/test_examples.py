"""Every example runs as documented (``python examples/<name>.py``) and shows what it claims.

The examples are run as subprocesses with warnings as errors; those that take a backend argument
run on both anyio backends. The CRUD actor is also tested in-process on both backends.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from cinema import ActorSystem, Addr, UnhandledMessage

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    # The tests import ``examples.*`` from the repository root, which pytest's importlib mode
    # does not put on sys.path.
    sys.path.insert(0, str(ROOT))

from examples import quickstart  # noqa: E402
from examples.crud import main as crud  # noqa: E402

BACKENDS = ["asyncio", "trio"]


def run_example(relative: str, *args: str) -> list[str]:
    """Run an example like a user would; return its stdout lines, failing on any stderr."""
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / relative), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout.splitlines()


def assert_in_order(lines: Sequence[str], expected: Sequence[str]) -> None:
    """Each expected text occurs in a line, in this order (other lines may come between)."""
    position = 0
    for text in expected:
        for index in range(position, len(lines)):
            if text in lines[index]:
                position = index + 1
                break
        else:
            output = "\n".join(lines)
            pytest.fail(f"{text!r} not found (in order) in the output:\n{output}")


def test_quickstart() -> None:
    assert run_example("examples/quickstart.py") == ["Hello, Cinema!"]


def test_crud_example() -> None:
    assert run_example("examples/crud/main.py") == [
        "get 1 -> 'alice'",
        "get 2 -> 'bob'",
        "update 1 -> True",
        "update 99 -> False",
        "get 1 -> 'alice liddell'",
        "delete 2 -> True",
        "delete 2 again -> False",
        "get 2 -> None",
        "concurrent creates: 100 of 100 users found",
        "remote get 1 -> 'alice liddell'",
        "remote update 3 -> True",
        "local get 3 -> 'carol lewis'",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_supervision_example(backend: str) -> None:
    lines = run_example("examples/supervision.py", backend)
    assert_in_order(
        lines,
        [
            "1. restart",
            "event: worker started",
            "work -> 1 then 2",
            "send raised ActorFailed, caused by RuntimeError('first failure')",
            "event: worker stopped",
            "event: worker started",
            "work -> fresh state: 1 then 2",
            "work queued behind the crash -> 1",
            "same Addr, still alive: True",
            "event: worker stopped",
            "event: monitor: <Addr Worker",
            "send raised ActorStopped; is_alive: False",
            "2. escalate",
            "event: parent generation 1 started",
            "event: child started",
            "the child failed",
            "event: child stopped",
            "event: parent generation 1 stopped",
            "event: parent generation 2 started",
            "event: child started",
            "old child alive: False | new child alive: True",
            "parent keeps its Addr: True",
            "3. shutdown",
            "event: child stopped",
            "event: parent generation 2 stopped",
            "done",
        ],
    )
    # Three failures within the window: two restarts, then the worker stops for good.
    assert sum("event: worker started" in line for line in lines) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_streams_example(backend: str) -> None:
    lines = run_example("examples/streams.py", backend)
    assert_in_order(
        lines,
        [
            "1. a memory object stream",
            "mid-stream GetTotal ->",
            "finished: 100 items, total 5050",
            "total: 5050",
            "2. an async generator",
            "finished: 10 items, total 55",
            "total: 55",
        ],
    )
    # Asked between two items, the actor answers with the sum of the items handled so far.
    middle = next(line for line in lines if "mid-stream GetTotal ->" in line)
    total = int(middle.rsplit(" ", 1)[1])
    assert total in {n * (n + 1) // 2 for n in range(1, 101)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_timers_and_registry_example(backend: str) -> None:
    lines = run_example("examples/timers_and_registry.py", backend)
    assert_in_order(
        lines,
        [
            "lookup('heartbeat', Heartbeat) is the same Addr: True",
            "lookup('heartbeat', Watcher) -> None",
            "NameTaken: the name 'heartbeat' is held by",
            "event: beat 1",
            "event: beat 2",
            "event: beat 3",
            "event: finished after 3 beats: stopping",
            "event: watcher: <Addr Heartbeat",
            "lookup('heartbeat') -> None",
            "unregister('heartbeat') -> False",
            "done",
        ],
    )
    assert not any("reminder" in line for line in lines)  # the cancelled run_later
    assert not any("beat 4" in line for line in lines)  # the cancelled run_interval


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo(backend: str) -> None:
    lines = run_example("examples/demo.py", backend)
    titles = [line for line in lines if line.startswith("[")]
    assert [title.split("]")[0] for title in titles] == [f"[{n}" for n in range(1, 11)]
    assert_in_order(
        lines,
        [
            "] spawn",
            "] stream",
            "] tell and ask",
            "] registry",
            "] crash and restart",
            "ok: counter instance #2 started",
            "ok: a fresh instance behind the same Addr: Get() -> 0",
            "] timer",
            "] watch",
            "ok: Terminated(<Addr Counter",
            "] dead letters",
            "dead_letters 0 -> 3",
            "] bounded mailbox",
            "] shutdown",
            "sleeper stopped",
            "demo finished: 10 steps, all checks passed",
        ],
    )
    assert not any("FAILED" in line for line in lines)


# -- in-process ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_quickstart_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    await quickstart.main()
    assert capsys.readouterr().out == "Hello, Cinema!\n"


@pytest.mark.anyio
async def test_crud_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    await crud.main()
    out = capsys.readouterr().out
    assert "update 99 -> False" in out
    assert "concurrent creates: 100 of 100 users found\n" in out
    assert out.endswith("remote update 3 -> True\nlocal get 3 -> 'carol lewis'\n")


@pytest.mark.anyio
async def test_crud_user_store() -> None:
    async with ActorSystem() as system:
        store = system.spawn(crud.UserStore())
        assert await store.send(crud.GetUser(1)) is None
        await store.send(crud.CreateUser(1, "alice"))
        assert await store.send(crud.GetUser(1)) == "alice"
        assert await store.send(crud.UpdateUser(1, "alicia")) is True
        assert await store.send(crud.UpdateUser(2, "bob")) is False
        assert await store.send(crud.GetUser(2)) is None  # a failed update creates nothing
        assert await store.send(crud.GetUser(1)) == "alicia"
        assert await store.send(crud.DeleteUser(1)) is True
        assert await store.send(crud.DeleteUser(1)) is False
        assert await store.send(crud.GetUser(1)) is None


@pytest.mark.anyio
async def test_crud_fire_and_forget_is_handled_in_order() -> None:
    async with ActorSystem() as system:
        store = system.spawn(crud.UserStore())
        store.do_send(crud.CreateUser(7, "first"))
        store.do_send(crud.UpdateUser(7, "second"))
        store.do_send(crud.DeleteUser(7))
        store.do_send(crud.CreateUser(7, "third"))
        assert await store.send(crud.GetUser(7)) == "third"


@pytest.mark.anyio
async def test_crud_concurrent_writers_need_no_lock() -> None:
    async with ActorSystem() as system:
        store = system.spawn(crud.UserStore())
        await crud.create_many(store, 0, 200)

        async def rename(user_id: int) -> None:
            assert await store.send(crud.UpdateUser(user_id, f"renamed-{user_id}"))

        async with anyio.create_task_group() as tg:
            for user_id in range(200):
                tg.start_soon(rename, user_id)
        names = [await store.send(crud.GetUser(user_id)) for user_id in range(200)]
        assert names == [f"renamed-{user_id}" for user_id in range(200)]


@pytest.mark.anyio
async def test_crud_store_rejects_unknown_messages() -> None:
    async with ActorSystem() as system:
        # Addr[Any]: the cinema.mypy plugin, when enabled, would flag these sends statically.
        store: Addr[Any] = system.spawn(crud.UserStore())
        with pytest.raises(UnhandledMessage):
            store.do_send("create alice")
        with pytest.raises(UnhandledMessage):
            await store.send(quickstart.Greet("alice"))
