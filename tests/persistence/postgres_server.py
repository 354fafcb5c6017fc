"""A throwaway PostgreSQL server for the tests and benchmarks: initdb in a temporary folder,
``pg_ctl start`` on a free loopback port, ``pg_ctl stop`` at the end.

The server binaries are the system's (``initdb`` on ``PATH``, or Debian's
``/usr/lib/postgresql/*/bin``), else those bundled in the ``pgserver`` wheel (hatch's default
env installs it on Python 3.11 and 3.12; it has no build for 3.13, where ``.ci/run`` installs
Debian's ``postgresql``). ``CINEMA_TEST_PG_BIN`` forces a choice: ``system``, ``pgserver``, or
the path of a ``bin`` folder holding ``initdb`` and ``pg_ctl``.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user, or
else as a dedicated system user ``cinema-postgres`` created with ``useradd --system`` (no
home, no login shell). When that user cannot reach the binaries (pip installs the wheel under
``/root``, mode 0700), they are copied once to a world-readable cache folder in the temp dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: ``system``, ``pgserver``, a ``bin`` folder, or unset/``auto`` (system, then pgserver).
BIN_ENV = "CINEMA_TEST_PG_BIN"
#: The system user created to run the server as when root has no ``postgres`` user.
SERVICE_USER = "cinema-postgres"


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be started here (the message says why)."""


def system_binaries() -> Path | None:
    """The folder of the system's ``initdb`` and ``pg_ctl``, or ``None``."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: (len(p.parts[-3]), p.parts[-3]),  # "9.6" < "15" < "16"
    )
    return versions[-1].parent if versions else None


def pgserver_binaries() -> Path | None:
    """The ``bin`` folder of the ``pgserver`` wheel's bundled PostgreSQL, or ``None`` when the
    wheel is not installed (found without importing it: its import has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = Path(location) / "pginstall" / "bin"
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def binaries() -> tuple[Path, str]:
    """``(bin folder, source)`` of the server binaries to use, ``source`` being ``system``,
    ``pgserver`` or ``env``; honours :data:`BIN_ENV`.

    :raises NoPostgres: none are installed.
    """
    choice = os.environ.get(BIN_ENV, "auto").strip() or "auto"
    if choice not in ("auto", "system", "pgserver"):
        bindir = Path(choice)
        if not (bindir / "initdb").is_file() or not (bindir / "pg_ctl").is_file():
            raise NoPostgres(f"{BIN_ENV}={choice!r} is not a folder holding initdb and pg_ctl")
        return bindir, "env"
    if choice in ("auto", "system"):
        found = system_binaries()
        if found is not None:
            return found, "system"
    if choice in ("auto", "pgserver"):
        found = pgserver_binaries()
        if found is not None:
            return found, "pgserver"
    raise NoPostgres(
        f"no PostgreSQL server binaries ({BIN_ENV}={choice}): install the pgserver wheel"
        " (Python < 3.13, in hatch's default env) or the system's (apt-get install postgresql;"
        " .ci/run does it)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> pwd.struct_passwd | None:
    """Who runs the server: ``None`` (this process's user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    nologin = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "/bin/false"
    )
    try:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", nologin, SERVICE_USER],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise NoPostgres(f"running as root, no postgres user, and useradd fails: {exc}") from exc
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise NoPostgres(
            f"running as root, no postgres user, and useradd {SERVICE_USER} failed:"
            f" {done.stderr.strip()}"
        ) from None


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can traverse every folder down to ``path`` (by the mode bits)."""
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.pw_gid or st.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _usable_by(bindir: Path, source: str, user: pwd.struct_passwd | None) -> Path:
    """``bindir``, or a copy of pgserver's installation that ``user`` can reach.

    The wheel's binaries find their libraries at ``$ORIGIN/../../../pgserver.libs`` (auditwheel's
    RPATH), so the copy keeps ``pgserver/pginstall`` and ``pgserver.libs`` side by side.
    """
    if user is None or _reachable(bindir, user):
        return bindir
    if source != "pgserver":
        raise NoPostgres(f"the server's user {user.pw_name} cannot reach {bindir}")
    install = bindir.parent  # site-packages/pgserver/pginstall
    site = install.parent.parent
    key = hashlib.sha256(f"{install}:{(bindir / 'initdb').stat().st_mtime_ns}".encode())
    cache = Path(tempfile.gettempdir()) / f"cinema-pg-bin-{key.hexdigest()[:16]}"
    copied = cache / "pgserver" / "pginstall" / "bin"
    if not (copied / "initdb").is_file():
        staging = Path(tempfile.mkdtemp(prefix="cinema-pg-bin-", dir=cache.parent))
        tree = staging / "tree"
        shutil.copytree(install, tree / "pgserver" / "pginstall", symlinks=True)
        if (site / "pgserver.libs").is_dir():
            shutil.copytree(site / "pgserver.libs", tree / "pgserver.libs", symlinks=True)
        for folder in (tree, tree / "pgserver"):
            os.chmod(folder, 0o755)
        try:
            os.rename(tree, cache)  # atomic: concurrent runs agree on one copy
        except OSError:
            if not (copied / "initdb").is_file():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return copied


@contextlib.contextmanager
def postgres_server(*, fsync: bool = True) -> Iterator[str]:
    """Start a PostgreSQL server and yield its URL (user ``cinema``, trust authentication on
    loopback only); stop it and delete its files on exit.

    :param fsync: ``False`` trades durability across power loss for speed (fine for tests).
    :raises NoPostgres: no server could be started.
    """
    user = _run_as()
    bindir = _usable_by(*binaries(), user)
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
