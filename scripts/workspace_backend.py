"""The build backend of the repository root, which is a workspace and not a distribution.

``hatch build`` or ``pip install .`` at the root end here with a message saying what to run
instead, rather than with an error from a backend that has no project to build.
"""

from __future__ import annotations

_MESSAGE = (
    "The repository root is a workspace of several distributions, not one: build them all "
    "with `hatch build --all` (or offline: `python scripts/build_all.py`), or one with "
    "`hatch build packages/<name>`; install from a clone with "
    "`pip install ./packages/cinema-core ./packages/cinema-remote ./packages/cinema-cluster`."
)


def _refuse(*args: object, **kwargs: object) -> str:
    raise SystemExit(_MESSAGE)


build_wheel = build_sdist = build_editable = _refuse
get_requires_for_build_wheel = get_requires_for_build_sdist = _refuse
get_requires_for_build_editable = _refuse
