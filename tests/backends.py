"""The anyio backends the tests run on.

Every async test runs on asyncio and trio (``tests/conftest.py``). The network tests (remote,
cluster and their acceptance contracts) also run on asyncio with uvloop's event loop, the loop
``uvicorn[standard]`` picks: their conftest files override ``anyio_backend`` with
``network_backend``. Code that needs the backend's name reads anyio's ``anyio_backend_name``
fixture (``"asyncio"`` on uvloop too).
"""

from __future__ import annotations

import pytest

BackendParam = str | tuple[str, dict[str, object]]

NETWORK_BACKENDS = ["asyncio", "trio", "uvloop"]


def backend_for(name: str) -> BackendParam:
    """The ``anyio_backend`` value for a test id: ``asyncio``, ``trio`` or ``uvloop``."""
    if name == "uvloop":
        import uvloop  # a test dependency (hatch.toml)

        return ("asyncio", {"loop_factory": uvloop.new_event_loop})
    return name


def network_backend(request: pytest.FixtureRequest) -> BackendParam:
    return backend_for(str(request.param))
