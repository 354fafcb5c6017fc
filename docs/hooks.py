"""mkdocs hook: one source tree of the ``cinema`` package for the API reference.

The three distributions install ``cinema``, ``cinema.remote`` and ``cinema.cluster`` from three
source folders; griffe (behind mkdocstrings) reads one package from one folder. Before the build
this links them into ``build/docs-api/cinema`` (cinema-core's files plus the ``remote`` and
``cluster`` subpackages), which ``mkdocs.yml`` hands to mkdocstrings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "docs-api" / "cinema"


def link_sources() -> None:
    """(Re)make the linked tree."""
    if TREE.exists():
        shutil.rmtree(TREE)
    TREE.mkdir(parents=True)
    core = ROOT / "packages" / "cinema-core" / "src" / "cinema"
    for entry in core.iterdir():
        if entry.name != "__pycache__":
            (TREE / entry.name).symlink_to(entry)
    for package in sorted((ROOT / "packages").glob("*/src/cinema/*/__init__.py")):
        folder = package.parent
        if not (TREE / folder.name).exists():
            (TREE / folder.name).symlink_to(folder)


# At import, when mkdocs loads the hooks while reading mkdocs.yml: before mkdocstrings looks at
# its paths (a path that does not exist yet would be dropped).
link_sources()
