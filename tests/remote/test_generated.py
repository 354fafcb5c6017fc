"""The committed protobuf code is what the pinned generator makes from the .proto files."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regenerating_changes_nothing() -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "gen_protos.py"))
    assert script["check"]() == []


def test_the_wire_proto_ships_inside_the_package() -> None:
    import cinema.remote.proto

    package_dir = Path(cinema.remote.proto.__file__).parent
    assert (package_dir / "wire.proto").is_file()
