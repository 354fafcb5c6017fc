"""The README's "Remote Actors" section works as shown: its complete programs (blocks starting
with ``# example:``) run on both backends and pass mypy and ruff, as in
``tests/examples/test_readme.py``; its server and client blocks run against each other (on both
backends), print what their ``# prints:`` comments say, and its ``.proto`` block is the
calculator example's."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import types
from pathlib import Path

import anyio
import pytest

import examples.calculator.calculator_pb2 as calculator_pb2
from cinema.remote import TcpTransport

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.examples.test_readme import RUN_LINE, Block, check_program, check_types  # noqa: E402

_BLOCK = re.compile(r"^```(python|proto)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_PRINTS = re.compile(r"#\s*prints:\s?(.*)$")

pytestmark = pytest.mark.anyio


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- section:remote -->", "<!-- /section:remote -->"
    return text[text.index(start) + len(start) : text.index(end)]


def blocks(language: str) -> list[str]:
    """The blocks of ``language`` (for Python: not the complete ``# example:`` programs)."""
    return [
        code
        for lang, code in _BLOCK.findall(section())
        if lang == language and not code.startswith("# example:")
    ]


PROGRAMS = [
    Block("remote", code)
    for lang, code in _BLOCK.findall(section())
    if lang == "python" and code.startswith("# example:")
]


def test_the_section_has_programs() -> None:
    assert PROGRAMS
    for block in PROGRAMS:
        assert block.code.rstrip().endswith(RUN_LINE), block.title
        assert block.expected()[0], block.title


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: block.slug)
def test_program_runs(block: Block, backend: str, tmp_path: Path) -> None:
    check_program(block, backend, tmp_path)


def test_programs_type_check(tmp_path: Path) -> None:
    paths = []
    for block in PROGRAMS:
        path = tmp_path / f"readme_remote_{block.slug}.py"
        path.write_text(block.code, encoding="utf-8")
        paths.append(str(path))
    check_types(paths, "readme-remote")


def significant(proto: str) -> list[str]:
    return [
        line.strip() for line in proto.splitlines() if line.strip() and not line.startswith("//")
    ]


def test_proto_block_is_the_calculator_example() -> None:
    (proto,) = blocks("proto")
    example = (ROOT / "examples" / "calculator" / "calculator.proto").read_text()
    assert significant(proto) == significant(example)


def load(name: str, code: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, f"README:{name}", "exec"), module.__dict__)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_server_and_client_blocks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server_code, client_code = blocks("python")
    monkeypatch.setitem(sys.modules, "calculator_pb2", calculator_pb2)
    server = load("server", server_code, monkeypatch)
    client = load("client", client_code, monkeypatch)
    address = f"127.0.0.1:{free_port()}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, address)
        with anyio.fail_after(10):
            while True:  # the block serves forever and does not say when it listens
                try:
                    conn = await TcpTransport().connect(address)
                except OSError:
                    await anyio.sleep(0.02)
                else:
                    await conn.aclose()
                    break
        await client.main(address)
        tg.cancel_scope.cancel()
    expected = [m.group(1) for m in map(_PRINTS.search, client_code.splitlines()) if m]
    assert capsys.readouterr().out.splitlines() == expected


def test_blocks_pass_ruff(tmp_path: Path) -> None:
    """Ruff with the repository's configuration (mypy was checked the same way by hand)."""
    names = ["server.py", "client.py"]
    for name, code in zip(names, blocks("python"), strict=True):
        (tmp_path / name).write_text(code)
    for block in PROGRAMS:
        (tmp_path / f"{block.slug}.py").write_text(block.code)
        names.append(f"{block.slug}.py")
    (tmp_path / "calculator_pb2.py").write_text("")  # first-party, as in a user's project
    config = str(ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--config", config, *names],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
