"""A throwaway PostgreSQL server for the tests and benchmarks: initdb in a temporary folder,
``pg_ctl start`` on a free loopback port, ``pg_ctl stop`` at the end.

The server binaries come from the system (Debian's ``postgresql`` package, which ``.ci/run``
installs): the ``pgserver`` wheel that bundles them has no build for Python 3.13. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be started here (the message says why)."""


def _binaries() -> Path:
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if versions:
        return versions[-1].parent
    raise NoPostgres(
        "PostgreSQL's initdb is not installed (apt-get install postgresql; .ci/run does it)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise NoPostgres("running as root and neither a postgres nor a nobody user exists")


@contextlib.contextmanager
def postgres_server(*, fsync: bool = True) -> Iterator[str]:
    """Start a PostgreSQL server and yield its URL (user ``cinema``, trust authentication on
    loopback only); stop it and delete its files on exit.

    :param fsync: ``False`` trades durability across power loss for speed (fine for tests).
    :raises NoPostgres: no server could be started.
    """
    bindir = _binaries()
    user = _run_as()
    tmp = Path(tempfile.mkdtemp(prefix="cinema-pg-"))
    data, sockets = tmp / "data", tmp / "sock"
    sockets.mkdir()
    if user is not None:
        for path in (tmp, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    uid = user.pw_uid if user is not None else None
    gid = user.pw_gid if user is not None else None
    groups: list[int] | None = [] if user is not None else None

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            check=False,
            user=uid,
            group=gid,
            extra_groups=groups,
        )

    env = dict(os.environ, LC_ALL="C.UTF-8")
    if user is not None:
        env["HOME"] = str(tmp)
    port = _free_port()
    ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        result = run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "cinema",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        if result.returncode != 0:
            raise NoPostgres(f"initdb failed: {result.stderr.strip()}")
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=100"
            f" -c fsync={'on' if fsync else 'off'}"
            f" -c synchronous_commit={'on' if fsync else 'off'}"
        )
        result = run(
            [*ctl, "-o", options, "-l", str(tmp / "server.log"), "-w", "-t", "60", "start"]
        )
        if result.returncode != 0:
            log = (
                (tmp / "server.log").read_text(errors="replace")
                if (tmp / "server.log").exists()
                else ""
            )
            raise NoPostgres(f"pg_ctl start failed: {result.stderr.strip()} {log[-2000:]}")
        started = True
        yield f"postgresql://cinema@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run([*ctl, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(tmp, ignore_errors=True)
