"""TLS and the shared-secret handshake."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cinema.remote import AuthenticationError, ConnectionLost, RemoteClient, TcpTransport
from cinema.remote.proto import wire_pb2 as pb
from tests.remote.protos.remote_test_pb2 import Add
from tests.remote.raw_peer import expect_close, raw, receive, send
from tests.remote.support import ADD, Calculator, calc_server, connect

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cinema-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def client_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


async def test_tls_round_trip(tls_files: tuple[Path, Path]) -> None:
    async with calc_server(ssl_context=server_context(tls_files)) as (server, _calc, _addr):
        conn = await TcpTransport().connect(server.address, ssl_context=client_context(tls_files))
        async with RemoteClient(conn) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            assert (await remote.call(ADD, Add(n=3))).value == 3


async def test_plaintext_client_cannot_talk_to_a_tls_server(tls_files: tuple[Path, Path]) -> None:
    async with (
        calc_server(ssl_context=server_context(tls_files)) as (server, _calc, _addr),
        connect(server) as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(ConnectionLost):
            await remote.call(ADD, Add(n=3), timeout=10)


async def test_client_refuses_an_untrusted_certificate(tls_files: tuple[Path, Path]) -> None:
    async with calc_server(ssl_context=server_context(tls_files)) as (server, _calc, _addr):
        with pytest.raises(ssl.SSLError):
            await TcpTransport().connect(server.address, ssl_context=ssl.create_default_context())


async def test_shared_secret_round_trip() -> None:
    async with (
        calc_server(secret="s3cret") as (server, _calc, _addr),
        connect(server, secret=b"s3cret") as client,
    ):
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        assert (await remote.call(ADD, Add(n=2))).value == 2


async def test_unauthenticated_peer_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with calc_server(secret="s3cret") as (server, calc, _addr):
        async with connect(server) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with pytest.raises(AuthenticationError, match="requires a shared secret"):
                await remote.call(ADD, Add(n=2))
        async with connect(server, secret="wrong") as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with pytest.raises(
                AuthenticationError, match="secrets of this client and the server differ"
            ):
                await remote.call(ADD, Add(n=2))
        assert calc.value == 0


async def test_a_client_with_a_secret_says_the_server_has_none() -> None:
    async with calc_server() as (server, calc, _addr):
        async with connect(server, secret="s3cret") as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with pytest.raises(AuthenticationError, match="server has no shared secret"):
                await remote.call(ADD, Add(n=2))
        assert calc.value == 0


async def test_a_wrong_client_proof_is_refused_by_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that skips checking the server and sends a bad proof gets UNAUTHENTICATED."""
    async with calc_server(secret="s3cret") as (server, calc, _addr), raw(server) as stream:
        await send(stream, pb.Frame(hello=pb.Hello(protocol_version=1, client_nonce=bytes(16))))
        welcome = await receive(stream)
        assert welcome is not None
        assert welcome.welcome.auth_required
        assert len(welcome.welcome.server_nonce) == 32
        await send(stream, pb.Frame(auth=pb.Auth(client_proof=b"\x00" * 32)))
        await send(stream, pb.Frame(envelope=pb.Envelope(kind=pb.ENVELOPE_KIND_ONEWAY)))
        await expect_close(stream, pb.ERROR_KIND_UNAUTHENTICATED)
        assert "authentication failed" in caplog.text
        assert calc.value == 0


async def test_a_client_with_a_secret_refuses_a_server_without_one() -> None:
    async with calc_server() as (server, _calc, _addr), connect(server, secret="s3cret") as client:
        remote = client.remote_addr(Calculator, "calc-server", "calculator")
        with pytest.raises(AuthenticationError):
            await remote.call(ADD, Add(n=2))
        # The connection is unusable afterwards.
        with pytest.raises(ConnectionLost):
            await remote.call(ADD, Add(n=2))


async def test_secret_never_travels() -> None:
    """Record the client's bytes: the secret does not appear in them."""
    sent: list[bytes] = []
    secret = b"a-very-recognisable-secret"
    async with calc_server(secret=secret) as (server, _calc, _addr):
        conn = await TcpTransport().connect(server.address)
        original = conn.send_frame
        original_nowait = getattr(conn, "send_frame_nowait", None)

        async def recording(frame: bytes) -> None:
            sent.append(frame)
            await original(frame)

        def recording_nowait(frame: bytes) -> bool:
            assert original_nowait is not None
            done: bool = original_nowait(frame)
            if done:
                sent.append(frame)
            return done

        # Spy on the wire: both ways a frame can leave (on asyncio, frames that need no
        # waiting leave without a coroutine).
        conn.send_frame = recording  # type: ignore[method-assign]  # spy on the wire
        if original_nowait is not None:
            conn.send_frame_nowait = recording_nowait  # type: ignore[method-assign]  # spy on the wire
        async with RemoteClient(conn, secret=secret) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            with anyio.fail_after(10):
                assert (await remote.call(ADD, Add(n=1))).value == 1
    assert len(sent) == 3  # hello, auth, request
    assert all(secret not in frame for frame in sent)


async def test_a_failed_tls_handshake_is_the_clients_fault(
    tls_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage instead of a TLS hello: at most a WARNING, no traceback; others still served."""
    async with calc_server(ssl_context=server_context(tls_files)) as (server, _calc, _addr):
        async with raw(server) as stream:
            await stream.send(b"\x16\x03\x01\x00\x05garbage, not a client hello")
            with anyio.fail_after(10):
                assert await receive_until_closed(stream)
        conn = await TcpTransport().connect(server.address, ssl_context=client_context(tls_files))
        async with RemoteClient(conn) as client:
            remote = client.remote_addr(Calculator, "calc-server", "calculator")
            assert (await remote.call(ADD, Add(n=1))).value == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def receive_until_closed(stream: SocketStream) -> bool:
    try:
        while await stream.receive():
            pass
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass
    return True
