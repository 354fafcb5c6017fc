"""A third-party distribution adds a serializer through an entry point, with no change to Cinema.

The test builds a throwaway distribution (hatchling's build hook, no network, no isolation)
that registers a JSON serializer for marked plain classes in the ``cinema`` entry-point group,
installs it into a temporary directory with ``pip install --target``, and runs a fresh
interpreter that calls a remote actor with messages of plain classes end to end on both anyio
backends. Without the
distribution the same script fails: the plugin really was used.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "cinema-probe-json"
version = "0.0.1"
requires-python = ">=3.11"

[project.entry-points.cinema]
probe-json = "probe_json"

[tool.hatch.build.targets.wheel]
packages = ["probe_json"]
"""

PLUGIN = '''\
"""Plain classes marked ``__probe_json__`` as JSON, for Cinema."""
import json

from cinema.abc import Serializer, hookimpl


class JsonObjects(Serializer):
    name = "probe-json"

    def handles(self, cls):
        return isinstance(cls, type) and getattr(cls, "__probe_json__", False)

    def type_name(self, cls):
        if not self.handles(cls):
            raise TypeError(f"{cls!r} is not a probe-json class")
        return f"{cls.__module__}.{cls.__qualname__}"

    def encode(self, message):
        return json.dumps(vars(message)).encode()

    def decode(self, data, cls):
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from exc


@hookimpl
def cinema_serializers():
    return [JsonObjects()]
'''

# Nothing in here names the serializer: Cinema picks it by the messages' class.
SCRIPT = """
from typing import Self

import anyio

from cinema import Actor, ActorSystem, Context, handler
from cinema.remote import LocalNode, RemoteClient, RemoteServer, TcpTransport, rpc


class Greet:  # not a dataclass: the built-in msgspec serializer does not take it
    __probe_json__ = True

    def __init__(self, name: str) -> None:
        self.name = name


class Greeting:
    __probe_json__ = True

    def __init__(self, text: str, count: int) -> None:
        self.text, self.count = text, count

    def __repr__(self) -> str:
        return f"Greeting(text={self.text!r}, count={self.count!r})"


class Greeter(Actor):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def greet(self, msg: Greet, ctx: Context[Self]) -> Greeting:
        self.count += 1
        return Greeting(f"Hello, {msg.name}!", self.count)


async def main() -> None:
    async with ActorSystem() as system:
        node = LocalNode("greeter-node")
        addr = system.spawn(Greeter())
        node.expose("greeter", addr)
        async with await RemoteServer.bind("127.0.0.1:0", node.handler(addr, Greet)) as server:
            conn = await TcpTransport().connect(server.address)
            async with RemoteClient(conn) as client:
                remote = client.remote_addr(Greeter, "greeter-node", "greeter")
                reply = await remote.call(rpc(Greet, Greeting), Greet("plugin"))
                raw = await remote.send(Greet("raw"))
                print(anyio_backend, repr(reply), raw.serializer, raw.message_type)


for anyio_backend in ("asyncio", "trio"):
    anyio.run(main, backend=anyio_backend)
"""


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_serializer_from_an_installed_distribution(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "probe_json").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "probe_json" / "__init__.py").write_text(PLUGIN)
    dist = tmp_path / "dist"
    dist.mkdir()
    build = f"from hatchling.build import build_wheel; print(build_wheel({str(dist)!r}))"
    built = run(sys.executable, "-c", build, cwd=project)
    assert built.returncode == 0, built.stderr
    wheel = dist / built.stdout.strip().splitlines()[-1]
    site_dir = tmp_path / "site"
    installed = run(*PIP, "install", "--no-deps", "--no-compile", "--target", site_dir, wheel)
    assert installed.returncode == 0, installed.stderr

    script = textwrap.dedent(SCRIPT)
    with_plugin = f"import site\nsite.addsitedir({str(site_dir)!r})\n{script}"
    done = run(sys.executable, "-c", with_plugin, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for backend, line in zip(("asyncio", "trio"), lines, strict=True):
        assert line == (
            f"{backend} Greeting(text='Hello, plugin!', count=1) probe-json __main__.Greeting"
        )

    bare = run(sys.executable, "-c", script, cwd=ROOT)
    assert bare.returncode != 0
    assert "UnknownSerializer: no serializer handles" in bare.stderr
