"""A clear error for ``import cinema.remote`` when the distribution that ships it is absent.

``cinema.remote`` and ``cinema.cluster`` live in their own distributions (cinema-remote,
cinema-cluster) that install into this package's namespace. Without them, Python's own error
(``No module named 'cinema.remote'``) does not say what to install. :class:`SiblingHint` is a
finder put at the *end* of :data:`sys.meta_path`: the import system asks it only after every
real finder failed to find the module, and only for the names in :data:`SIBLINGS`; it then
raises :class:`ModuleNotFoundError` naming the distribution. When the distribution is installed
the real finders find it first and this finder is never asked.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# Subpackage of ``cinema`` -> the distribution that ships it (and cinema-core's extra for it).
SIBLINGS: dict[str, str] = {
    "cinema.remote": "cinema-remote",
    "cinema.cluster": "cinema-cluster",
    "cinema.persistence": "cinema-persistence",
    "cinema.dashboard": "cinema-dashboard",
}


class SiblingHint:
    """A meta-path finder that turns a missing sibling distribution into a helpful error."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        """Raise for a known sibling that no other finder found; return ``None`` otherwise.

        :raises ModuleNotFoundError: ``fullname`` is in :data:`SIBLINGS`.
        """
        distribution = SIBLINGS.get(fullname)
        if distribution is None:
            return None
        extra = fullname.rpartition(".")[2]
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: it ships in the {distribution} distribution, which "
            f"is not installed. Install it: pip install {distribution} "
            f'(or pip install "cinema-core[{extra}]"; from a clone of the repository: '
            f"pip install ./packages/{distribution})",
            name=fullname,
        )


def install() -> None:
    """Append one :class:`SiblingHint` to :data:`sys.meta_path` (idempotent)."""
    if not any(isinstance(finder, SiblingHint) for finder in sys.meta_path):
        sys.meta_path.append(SiblingHint())
