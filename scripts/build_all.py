"""Build the sdist and the wheel of every distribution under ``packages/`` into one folder.

Usage: ``python scripts/build_all.py [--out DIR] [--wheel-only]`` (default ``dist/``). It is the
offline twin of ``hatch build --all`` (which builds each workspace member in a fresh build
environment, so it needs the package index): each distribution is built by hatchling's PEP 517
hooks in its own folder, without network or build isolation, with the ``hatchling`` of the
running interpreter (the development environment has it: ``hatch run python
scripts/build_all.py``). A new distribution under ``packages/`` is picked up with no change.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def distributions(root: Path = ROOT) -> list[Path]:
    """The folders under ``packages/`` that hold a ``pyproject.toml``, sorted by name."""
    return sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))


def build(project: Path, out: Path, hook: str) -> Path:
    """Run hatchling's ``hook`` (``build_wheel`` or ``build_sdist``) in ``project``."""
    code = f"from hatchling.build import {hook}; print({hook}({str(out)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"building {project.name} ({hook}) failed:\n{done.stderr}")
    return out / done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="default: dist/")
    parser.add_argument("--wheel-only", action="store_true", help="skip the sdists")
    args = parser.parse_args(argv)
    try:
        import hatchling  # noqa: F401
    except ImportError:
        print("hatchling is needed: pip install hatchling (or run `hatch build --all`)")
        return 1
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    hooks = ["build_wheel"] if args.wheel_only else ["build_sdist", "build_wheel"]
    for project in distributions():
        for hook in hooks:
            print(build(project, out, hook).relative_to(out.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
