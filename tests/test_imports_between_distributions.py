"""The distributions talk to each other only through public names.

cinema-remote, cinema-cluster and cinema-persistence ship separately from cinema-core (and
cluster from remote): what one imports from another must be public (``cinema``, ``cinema.abc``,
``cinema.lowlevel``, ``cinema.remote``, ...), never a private module (a path segment starting
with ``_``), so that each can change its insides without breaking the others. cinema-core
imports no sibling.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parent.parent / "packages"

#: distribution -> (its source package dir, the dotted name it owns)
DISTRIBUTIONS = {
    "cinema-core": (PACKAGES / "cinema-core/src/cinema", "cinema"),
    "cinema-remote": (PACKAGES / "cinema-remote/src/cinema/remote", "cinema.remote"),
    "cinema-cluster": (PACKAGES / "cinema-cluster/src/cinema/cluster", "cinema.cluster"),
    "cinema-persistence": (
        PACKAGES / "cinema-persistence/src/cinema/persistence",
        "cinema.persistence",
    ),
    "cinema-dashboard": (PACKAGES / "cinema-dashboard/src/cinema/dashboard", "cinema.dashboard"),
}
SIBLINGS = ("cinema.remote", "cinema.cluster", "cinema.persistence", "cinema.dashboard")


def _absolute_imports(package_dir: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((str(path.relative_to(package_dir)), node.module))
            elif isinstance(node, ast.Import):
                found.extend((str(path.relative_to(package_dir)), a.name) for a in node.names)
    return found


def _owner(module: str) -> str:
    for sibling in SIBLINGS:
        if module == sibling or module.startswith(sibling + "."):
            return sibling
    return "cinema"


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_only_public_names_of_other_distributions(distribution: str) -> None:
    package_dir, own = DISTRIBUTIONS[distribution]
    wrong: list[str] = []
    for where, module in _absolute_imports(package_dir):
        if module.split(".")[0] != "cinema" or _owner(module) == own:
            continue
        if own == "cinema":
            wrong.append(f"{where}: {module} (cinema-core imports no sibling)")
        elif any(part.startswith("_") for part in module.split(".")):
            wrong.append(f"{where}: {module}")
    assert wrong == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("from cinema.remote._client import RemoteClient\n")
    assert _absolute_imports(tmp_path) == [("m.py", "cinema.remote._client")]
    assert _owner("cinema.remote._client") == "cinema.remote"


def test_the_dashboard_keeps_cinema_core_dependencies_unchanged() -> None:
    # cinema-dashboard brings Starlette and uvicorn; cinema-core itself still needs only these.
    import tomllib

    core = tomllib.loads((PACKAGES / "cinema-core/pyproject.toml").read_text(encoding="utf-8"))
    names = sorted(d.split(">")[0].split("=")[0] for d in core["project"]["dependencies"])
    assert names == ["anyio", "pluggy"]
    dashboard = tomllib.loads(
        (PACKAGES / "cinema-dashboard/pyproject.toml").read_text(encoding="utf-8")
    )
    assert "cinema-cluster==0.1.0" in dashboard["project"]["dependencies"]
