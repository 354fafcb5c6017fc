"""Packaging layout: a distribution shipping ``cinema/<name>/`` imports next to cinema-core,
both as a wheel and as an editable install, and a third-party transport registered through an
entry point is used with no change to Cinema.

Each case builds with hatchling's build hooks (no network, no build isolation), installs into
a throwaway directory with ``pip install --target`` and imports from a fresh interpreter that
adds that directory as a site directory (so ``.pth`` files of editable installs are honoured).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]

PROBE_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "cinema-layoutprobe"
version = "0.0.1"
requires-python = ">=3.11"

[tool.hatch.build.targets.wheel]
only-include = ["src/cinema/layoutprobe"]
sources = ["src"]
"""


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _hatchling(hook: str, project: Path, out: Path) -> Path:
    # The PEP 517/660 hooks directly: what pip would run, minus pip's start-up time. (pip cannot
    # install an editable into --target anyway.)
    out.mkdir(exist_ok=True)
    code = f"from hatchling.build import {hook}; print({hook}({str(out)!r}))"
    name = run(sys.executable, "-c", code, cwd=project).strip().splitlines()[-1]
    return out / name


def build_wheel(project: Path, out: Path) -> Path:
    return _hatchling("build_wheel", project, out)


def build_editable(project: Path, out: Path) -> Path:
    return _hatchling("build_editable", project, out)


def install(wheel: Path, target: Path) -> None:
    run(*PIP, "install", "--no-deps", "--no-compile", "--target", target, wheel)


def python_with_site(site_dir: Path, code: str) -> str:
    prelude = f"import site\nsite.addsitedir({str(site_dir)!r})\n"
    return run(sys.executable, "-c", prelude + textwrap.dedent(code), cwd=ROOT)


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("probe")
    (project / "pyproject.toml").write_text(PROBE_PYPROJECT)
    package = project / "src" / "cinema" / "layoutprobe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("MARK = 'probe'\n")
    return project


IMPORT_NEXT_TO_CORE = """
import cinema, cinema.layoutprobe, cinema.remote
from cinema import ActorSystem
assert cinema.layoutprobe.MARK == "probe"
print(cinema.layoutprobe.__file__)
print(cinema.__file__)
"""


def test_subpackage_wheel_imports_next_to_core(probe_project: Path, tmp_path: Path) -> None:
    install(build_wheel(probe_project, tmp_path / "dist"), tmp_path / "site")
    probe_file, core_file = python_with_site(tmp_path / "site", IMPORT_NEXT_TO_CORE).split()
    assert Path(probe_file).is_relative_to(tmp_path / "site")
    assert Path(core_file).is_relative_to(ROOT / "packages" / "cinema-core")
    assert not (tmp_path / "site" / "cinema" / "__init__.py").exists()


def test_subpackage_editable_imports_next_to_core(probe_project: Path, tmp_path: Path) -> None:
    install(build_editable(probe_project, tmp_path / "dist"), tmp_path / "site")
    probe_file, _core_file = python_with_site(tmp_path / "site", IMPORT_NEXT_TO_CORE).split()
    # The editable install points into the project's source tree.
    assert Path(probe_file).is_relative_to(probe_project / "src")


def test_cinema_remote_wheel_ships_only_its_subpackage(tmp_path: Path) -> None:
    wheel = build_wheel(ROOT / "packages" / "cinema-remote", tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "cinema/__init__.py" not in names
    assert "cinema/remote/__init__.py" in names
    assert "cinema/remote/proto/wire.proto" in names
    assert "cinema/remote/proto/wire_pb2.py" in names
    assert "cinema/remote/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[cinema]" in text
    assert "cinema-remote-tcp = cinema.remote._tcp" in text


def test_third_party_transport_plugin_is_used_through_its_entry_point(tmp_path: Path) -> None:
    project = ROOT / "examples" / "transport_plugin"
    install(build_wheel(project, tmp_path / "dist"), tmp_path / "site")
    out = python_with_site(
        tmp_path / "site",
        f"""
        import runpy
        runpy.run_path({str(project / "demo.py")!r}, run_name="__main__")
        """,
    )
    assert "'loop'" in out
    assert "HELLO OVER LOOP://" in out
    # Without the distribution, the scheme is unknown: the demo really used the plugin.
    bare = subprocess.run(
        [sys.executable, str(project / "demo.py")], capture_output=True, text=True, check=False
    )
    assert bare.returncode != 0
    assert "PluginNotFound" in bare.stderr
