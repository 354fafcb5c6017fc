"""examples/calculator: server and client as real processes, run as the README says
(``python examples/calculator/server.py``, from any directory), on both backends."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "examples" / "calculator" / "server.py"
CLIENT = ROOT / "examples" / "calculator" / "client.py"
BACKENDS = ["asyncio", "trio"]


def client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(CLIENT), *args],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_calculator_server_and_clients(backend: str) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error",
            str(SERVER),
            "--port",
            "0",
            "--secret",
            "xyz",
            "--backend",
            backend,
        ],
        cwd=ROOT.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first
        address = first.removeprefix("listening on ").strip()

        # --secret anywhere: first, between the numbers, last.
        done = client("--secret", "xyz", address, "5", "--backend", backend, "10", "-3")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["+5 -> 5", "+10 -> 15", "-3 -> 12", "total 12"]
        again = client(address, "--secret", "xyz")
        assert again.stdout.splitlines() == ["total 12"], again.stderr

        # One request out of the 32-bit range fails the calculator: its client is told in one
        # line, the server logs the failure, and the restarted calculator serves the next one.
        bad = client(address, "2147483000", "1000", "7", "--secret", "xyz")
        assert bad.stdout.splitlines() == ["+2147483000 -> 2147483012"]
        line = one_error_line(bad)
        assert line.startswith("error: the calculator failed on +1000: "), line
        assert line.endswith("OverflowError: 2147484012 does not fit the calculator's 32 bits")
        later = client(address, "5", "--secret", "xyz")
        assert later.returncode == 0, later.stderr
        assert later.stdout.splitlines() == ["+5 -> 5", "total 5"]  # a fresh instance

        wrong = client(address, "5", "--secret", "abc")
        assert "secrets of this client and the server differ" in one_error_line(wrong)
        missing = client(address, "5")
        assert "requires a shared secret" in one_error_line(missing)

        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert out.splitlines() == ["server stopped"]
    # The one failure, logged with its traceback; nothing else on the server's screen.
    assert err.count("Traceback") == 1, err
    assert err.splitlines()[0].endswith("ERROR Calculator#1 failed: restarting"), err
    assert err.splitlines()[-1] == (
        "OverflowError: 2147484012 does not fit the calculator's 32 bits"
    ), err


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_server_is_one_line_and_exit_1(backend: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = client(f"127.0.0.1:{port}", "5", "--backend", backend)
    assert result.stdout == ""
    assert one_error_line(result) == (
        f"error: cannot connect to 127.0.0.1:{port}: connection refused (is the server running?)"
    )


def test_a_taken_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-W", "error", str(SERVER), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert one_error_line(result).startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


def test_a_number_out_of_the_int32_range_is_a_usage_error() -> None:
    result = client("127.0.0.1:1", "99999999999")
    assert result.returncode == 2
    assert "99999999999 is not a 32-bit integer" in result.stderr
