"""Regenerate the committed protobuf code (``*_pb2.py`` and ``*_pb2.pyi``) from the ``.proto``s.

Usage: ``python scripts/gen_protos.py`` (rewrite) or ``python scripts/gen_protos.py --check``
(exit 1 and list the files that differ). Uses ``grpc_tools.protoc`` (the pinned generator) and
mypy-protobuf's ``protoc-gen-mypy``, which must be on PATH or next to the Python interpreter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (include root, .proto path relative to it): the generated modules land next to each .proto,
# importable under the package path the include root implies.
PROTOS: list[tuple[Path, str]] = [
    (ROOT / "packages/cinema-remote/src", "cinema/remote/proto/wire.proto"),
    (ROOT / "examples/calculator", "calculator.proto"),
    (ROOT / "tests/remote/protos", "remote_test.proto"),
    (ROOT / "examples/persistence", "events.proto"),
    (ROOT / "tests/persistence/protos", "persistence_test.proto"),
]


def _plugin_path() -> str:
    found = shutil.which("protoc-gen-mypy")
    if found:
        return os.environ["PATH"]
    beside = Path(sys.executable).parent
    if (beside / "protoc-gen-mypy").exists():
        return f"{beside}{os.pathsep}{os.environ.get('PATH', '')}"
    raise SystemExit("protoc-gen-mypy not found: pip install mypy-protobuf")


def generate(out_dir: Path | None = None) -> list[Path]:
    """Generate every proto; into ``out_dir`` (mirroring the repo) or in place. Returns the
    generated files' paths relative to the repository root."""
    env = dict(os.environ, PATH=_plugin_path())
    produced: list[Path] = []
    for include, proto in PROTOS:
        target = include if out_dir is None else out_dir / include.relative_to(ROOT)
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{include}",
                f"--python_out={target}",
                f"--mypy_out={target}",
                proto,
            ],
            check=True,
            env=env,
            cwd=include,
        )
        stem = proto.removesuffix(".proto")
        for suffix in ("_pb2.py", "_pb2.pyi"):
            produced.append((include / (stem + suffix)).relative_to(ROOT))
    return produced


def check() -> list[Path]:
    """The committed generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        return [
            rel for rel in generate(out) if (out / rel).read_bytes() != (ROOT / rel).read_bytes()
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report differences")
    args = parser.parse_args()
    if args.check:
        stale = check()
        for rel in stale:
            print(f"stale: {rel}")
        return 1 if stale else 0
    for rel in generate():
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
