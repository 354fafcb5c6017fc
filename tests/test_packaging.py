"""Packaging: every distribution builds offline with one command, ships the MIT license and
complete metadata, and describes itself on PyPI with a page whose links work there; the root
is a workspace that says what to build instead; a missing sibling distribution is named.

The wheels and sdists are built by ``scripts/build_all.py`` (the documented command behind
``hatch build --all`` when offline), without network or build isolation.
"""

from __future__ import annotations

import email
import email.message
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
URL_LABELS = {"Homepage", "Documentation", "Source", "Changelog", "Issues"}


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run(sys.executable, "scripts/build_all.py", "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def artifact(dist: Path, name: str, suffix: str) -> Path:
    (found,) = dist.glob(f"{name.replace('-', '_')}-*{suffix}")
    return found


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = (n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def test_the_documented_command_builds_every_distribution(dist: Path) -> None:
    assert {"cinema-cluster", "cinema-core", "cinema-remote"} <= set(DISTRIBUTIONS)
    assert {"cinema-persistence", "cinema-dashboard"} <= set(DISTRIBUTIONS)
    for name in DISTRIBUTIONS:
        assert artifact(dist, name, ".whl").exists()
        assert artifact(dist, name, ".tar.gz").exists()


def test_every_license_copy_is_the_repository_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    for name in DISTRIBUTIONS:
        assert (ROOT / "packages" / name / "LICENSE").read_text() == text, name


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_and_sdist_ship_the_license(dist: Path, name: str) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    with zipfile.ZipFile(artifact(dist, name, ".whl")) as zf:
        (entry,) = (n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        assert zf.read(entry).decode() == license_text
    with tarfile.open(artifact(dist, name, ".tar.gz")) as tf:
        (member,) = (m for m in tf.getmembers() if m.name.endswith("/LICENSE"))
        assert member.name.count("/") == 1  # at the top of the sdist
        extracted = tf.extractfile(member)
        assert extracted is not None
        assert extracted.read().decode() == license_text


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_wheel_metadata_is_complete(dist: Path, name: str) -> None:
    meta = wheel_metadata(artifact(dist, name, ".whl"))
    assert meta["Name"] == name
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "Cinema developers" in (meta["Author"] or "") + (meta["Author-email"] or "")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) >= URL_LABELS
    assert all(u.startswith("https://") for u in urls.values())
    classifiers = set(meta.get_all("Classifier") or [])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert meta["Requires-Python"] == ">=3.11"


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_pypi_description_is_a_page_with_absolute_links(dist: Path, name: str) -> None:
    meta = wheel_metadata(artifact(dist, name, ".whl"))
    assert meta["Description-Content-Type"] == "text/markdown"
    body = meta.get_payload()
    assert isinstance(body, str)
    assert body.startswith(f"# {name}\n")
    assert len(body.splitlines()) >= 20, "a real page, not one line"
    links = re.findall(r"\]\(([^)]+)\)", body)
    assert links, "links to the project"
    relative = [link for link in links if not link.startswith("https://")]
    assert relative == [], f"links that break on PyPI: {relative}"


def test_the_workspace_root_says_what_to_build_instead(tmp_path: Path) -> None:
    done = run(*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path, ".")
    assert done.returncode != 0
    assert "hatch build --all" in done.stdout + done.stderr
    assert not list(tmp_path.iterdir())


# A fresh interpreter without site-packages' .pth files (so without the editable installs of
# the development environment) that imports cinema from the wheels installed into ``site``,
# and its dependencies (anyio, pluggy, protobuf) from this interpreter's site-packages.
def python_with_wheels(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    import anyio

    deps = Path(anyio.__file__).parent.parent
    prelude = f"import sys\nsys.path[:0] = [{str(site)!r}, {str(deps)!r}]\n"
    return run(sys.executable, "-S", "-c", prelude + textwrap.dedent(code), cwd=site)


def install(site: Path, *wheels: Path) -> None:
    done = run(*PIP, "install", "--no-deps", "--no-compile", "--target", site, *wheels)
    assert done.returncode == 0, done.stderr


def test_a_missing_sibling_distribution_is_named(dist: Path, tmp_path: Path) -> None:
    install(tmp_path, artifact(dist, "cinema-core", ".whl"))
    done = python_with_wheels(
        tmp_path,
        """
        import cinema
        assert cinema.__file__.startswith(sys.path[0]), cinema.__file__
        for name in ("cinema.remote", "cinema.cluster", "cinema.nothing"):
            try:
                __import__(name)
            except ModuleNotFoundError as exc:
                assert exc.name == name, exc.name
                print(exc)
        """,
    )
    assert done.returncode == 0, done.stderr
    remote, cluster, nothing = done.stdout.splitlines()
    assert "cinema-remote distribution, which is not installed" in remote
    assert "pip install cinema-remote" in remote
    assert 'pip install "cinema-core[remote]"' in remote
    assert "pip install cinema-cluster" in cluster
    assert nothing == "No module named 'cinema.nothing'"


def test_an_installed_sibling_is_imported_as_usual(dist: Path, tmp_path: Path) -> None:
    core, remote = artifact(dist, "cinema-core", ".whl"), artifact(dist, "cinema-remote", ".whl")
    install(tmp_path, core, remote)
    done = python_with_wheels(
        tmp_path,
        """
        import cinema.remote
        from cinema.remote import RemoteServer
        print(cinema.remote.__file__)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(tmp_path / "cinema" / "remote")


def test_the_docs_env_pins_what_docs_requirements_pins() -> None:
    import tomllib

    hatch = tomllib.loads((ROOT / "hatch.toml").read_text())
    lines = (ROOT / "docs" / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins
    assert hatch["envs"]["docs"]["dependencies"] == pins
