"""The committed gossip protobuf code is what the pinned generator makes from gossip.proto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cinema.cluster.proto

SRC = Path(__file__).resolve().parents[2] / "packages" / "cinema-cluster" / "src"
PROTO = "cinema/cluster/proto/gossip.proto"


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{SRC}",
            f"--python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            PROTO,
        ],
        check=True,
        env=env,
        cwd=SRC,
        capture_output=True,
    )
    for suffix in ("_pb2.py", "_pb2.pyi"):
        rel = PROTO.removesuffix(".proto") + suffix
        assert (tmp_path / rel).read_bytes() == (SRC / rel).read_bytes(), f"{rel} is stale"


def test_the_gossip_proto_ships_inside_the_package() -> None:
    package_dir = Path(cinema.cluster.proto.__file__).parent
    assert (package_dir / "gossip.proto").is_file()
