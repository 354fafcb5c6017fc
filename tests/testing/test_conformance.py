"""The conformance suites of cinema.remote.testing, run against the built-in TCP and Unix
transports and the protobuf serializer (as a plugin author runs them on their own), on
asyncio, trio and asyncio with uvloop."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from google.protobuf.wrappers_pb2 import Int64Value, StringValue

from cinema.abc import Serializer, Transport
from cinema.remote import ProtobufSerializer, TcpTransport, UnixTransport
from cinema.remote.testing import SerializerSuite, TransportSuite
from cinema.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.backends import NETWORK_BACKENDS, BackendParam, network_backend  # noqa: E402


@pytest.fixture(params=NETWORK_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> BackendParam:
    return network_backend(request)


class TestTcpTransport(TransportSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return TcpTransport()

    @pytest.fixture
    def address(self) -> str:
        return "tcp://127.0.0.1:0"

    @pytest.fixture
    def unreachable(self) -> str:
        return f"tcp://127.0.0.1:{free_port()}"


class TestUnixTransport(TransportSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return UnixTransport()

    @pytest.fixture
    def address(self, tmp_path: Path) -> str:
        return f"unix://{tmp_path / 'conformance.sock'}"

    @pytest.fixture
    def unreachable(self, tmp_path: Path) -> str:
        return f"unix://{tmp_path / 'nobody.sock'}"


class TestProtobufSerializer(SerializerSuite):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return ProtobufSerializer()

    @pytest.fixture
    def samples(self) -> Sequence[object]:
        return [StringValue(value="hello"), StringValue(), Int64Value(value=-(2**40))]

    @pytest.fixture
    def foreign(self) -> object:
        return {"not": "protobuf"}


# The example third-party transport (examples/transport_plugin), imported from its source tree:
# what its author runs before publishing it.
from examples.transport_plugin.src.cinema_loop import LoopTransport  # noqa: E402


class TestExampleLoopTransport(TransportSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return LoopTransport()

    @pytest.fixture
    def address(self) -> str:
        return "loop://conformance"

    @pytest.fixture
    def unreachable(self) -> str:
        return "loop://nobody"
