"""Free loopback ports for servers started in tests."""

from __future__ import annotations

import socket
import threading

__all__ = ["free_port"]

_given: set[tuple[str, int]] = set()
_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now and that this process has not been
    given before (so two servers of one test never get the same port).

    Another process may still take it before the test binds it; where the code under test can
    bind port 0 and report the real port (``RemoteServer.bind("127.0.0.1:0", ...)``), prefer
    that.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        with _lock:
            if (host, port) not in _given:
                _given.add((host, port))
                return port
