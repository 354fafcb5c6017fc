"""The committed gossip protobuf code is what the pinned generator makes from gossip.proto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cinema.cluster.proto

ROOT = Path(__file__).resolve().parents[2]
# (include root, .proto relative to it): generated modules land next to each .proto.
PROTOS = [
    (ROOT / "packages" / "cinema-cluster" / "src", "cinema/cluster/proto/gossip.proto"),
    (ROOT / "tests" / "cluster" / "protos", "cluster_test.proto"),
]


@pytest.mark.parametrize(("src", "proto"), PROTOS, ids=[p for _, p in PROTOS])
def test_regenerating_changes_nothing(tmp_path: Path, src: Path, proto: str) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{src}",
            f"--python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            proto,
        ],
        check=True,
        env=env,
        cwd=src,
        capture_output=True,
    )
    for suffix in ("_pb2.py", "_pb2.pyi"):
        rel = proto.removesuffix(".proto") + suffix
        assert (tmp_path / rel).read_bytes() == (src / rel).read_bytes(), f"{rel} is stale"


def test_the_gossip_proto_ships_inside_the_package() -> None:
    package_dir = Path(cinema.cluster.proto.__file__).parent
    assert (package_dir / "gossip.proto").is_file()
