"""examples/calculator: server and client as two real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_calculator_server_and_client_processes() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.calculator.server", "--port", "0", "--secret", "xyz"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stderr is not None
        first = server.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first + server.stderr.read()
        address = first.removeprefix("listening on ").strip()
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "examples.calculator.client",
                address,
                "5",
                "10",
                "-3",
                "--secret",
                "xyz",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == ["+5 -> 5", "+10 -> 15", "-3 -> 12", "total 12"]
        # A second client sees the state the first one left.
        again = subprocess.run(
            [sys.executable, "-m", "examples.calculator.client", address, "--secret", "xyz"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert again.stdout.splitlines() == ["total 12"], again.stderr
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert "server stopped" in out
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
