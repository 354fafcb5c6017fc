"""Keeps the benchmark harness working: every workload runs with a tiny size and returns its
metrics. No timing is asserted here; speed is judged only by ``benchmarks/run.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The workloads import ``benchmarks.*`` from the repository root, which pytest's
    # importlib mode does not put on sys.path.
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import Target, Workload, discover, missing_requirement  # noqa: E402
from benchmarks.run import RESULT_MARK, select  # noqa: E402

RUN_PY = ROOT / "benchmarks" / "run.py"
WORKLOADS = discover()

#: Big enough that an RSS delta is well above page granularity and allocator slack.
SMOKE_SIZE = 5_000


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[str]:
    """One PostgreSQL server for every PostgreSQL workload of the smoke run (each makes its own
    database on it: ``CINEMA_BENCH_PG_URL``) instead of a server per workload."""
    from tests.persistence.postgres_server import NoPostgres, postgres_server

    try:
        server = postgres_server(fsync=False)
        url = server.__enter__()
    except NoPostgres as exc:
        pytest.fail(f"no PostgreSQL server for the PostgreSQL workloads: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def _run_worker(
    workload_id: str, size: int, env: dict[str, str] | None = None
) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(RUN_PY), "--worker", workload_id, "--size", str(size)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    assert len(lines) == 1, done.stdout + done.stderr
    result: dict[str, object] = json.loads(lines[0][len(RESULT_MARK) :])
    return result


@pytest.mark.parametrize("workload_id", list(WORKLOADS))
def test_workload_returns_its_metrics(workload_id: str, request: pytest.FixtureRequest) -> None:
    workload = WORKLOADS[workload_id]
    missing = missing_requirement(workload)
    if missing is not None:
        pytest.skip(f"{missing} is not installed")
    env = None
    if workload_id.startswith("persistence.") and "psycopg" in workload.requires:
        env = dict(os.environ, CINEMA_BENCH_PG_URL=request.getfixturevalue("shared_postgres"))
    # In a fresh process, as the runner does: memory figures need a clean heap.
    size = workload.smoke_size or min(workload.quick_size, SMOKE_SIZE)
    result = _run_worker(workload_id, size, env)
    assert "error" not in result, result.get("error")
    metrics = result["metrics"]
    assert isinstance(metrics, dict)
    for name in workload.metrics:
        assert isinstance(metrics.get(name), float), (name, metrics)
        assert metrics[name] > 0, (name, metrics)


def test_workload_definitions_are_consistent() -> None:
    assert WORKLOADS, "no workload found"
    for workload_id, workload in WORKLOADS.items():
        assert isinstance(workload, Workload)
        assert workload.metrics, workload_id
        assert 0 < workload.quick_size <= workload.size, workload_id
        assert workload.smoke_size is None or 0 < workload.smoke_size <= workload.quick_size
        for metric, reference in workload.compare.items():
            ref_id, _, ref_metric = reference.partition(":")
            assert metric in workload.metrics, (workload_id, metric)
            assert ref_id in WORKLOADS, (workload_id, reference)
            assert ref_metric in WORKLOADS[ref_id].metrics, (workload_id, reference)
        for metric, target in workload.targets.items():
            assert metric in workload.metrics, (workload_id, metric)
            assert not target.relative or metric in workload.compare, (workload_id, metric)


def test_selection_pulls_in_references_and_drops_full_only_in_quick_mode() -> None:
    chosen = select(WORKLOADS, ["core.tell[[]asyncio[]]"], quick=False)
    assert list(chosen)[-1] == "core.tell[asyncio]"
    assert "baseline.asyncio_queue[asyncio]" in chosen  # its reference, listed first
    assert set(select(WORKLOADS, ["core.idle_1m*"], quick=False)) == {"core.idle_1m[asyncio]"}
    assert select(WORKLOADS, ["core.idle_1m*"], quick=True) == {}
    everything = select(WORKLOADS, [], quick=False)
    groups = [w.group for w in everything.values()]
    assert groups == sorted(groups, key=["baseline", "peer", "cinema"].index)


def test_target_marks() -> None:
    at_least = Target(">=", 2.5, relative=True)
    assert at_least.met(1.0, 2.6) is True
    assert at_least.met(1.0, 2.4) is False
    assert at_least.met(1.0, None) is None
    at_most = Target("<=", 600)
    assert at_most.met(599.0, None) is True
    assert at_most.met(601.0, 0.1) is False
    assert at_most.describe("bytes_per_actor") == "<= 600 B"
    assert at_least.describe("msgs_per_s") == ">= 2.5x"


def test_runner_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [
            sys.executable,
            str(RUN_PY),
            "--quick",
            "--only",
            "baseline.asyncio_queue[[]asyncio+uvloop[]]",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(output.read_text())
    assert report["mode"] == "quick"
    assert report["runs"] == 1
    # The uvloop figure is shown as a ratio: its reference was pulled into the run.
    assert set(report["workloads"]) == {
        "baseline.asyncio_queue[asyncio]",
        "baseline.asyncio_queue[asyncio+uvloop]",
    }
    rows = {row["id"]: row for row in report["rows"]}
    plain = rows["baseline.asyncio_queue[asyncio]"]
    assert plain["status"] == "ok"
    assert plain["median"] > 0
    uv = rows["baseline.asyncio_queue[asyncio+uvloop]"]
    if uv["status"] == "ok":
        assert uv["ratio"] == pytest.approx(uv["median"] / plain["median"])
    else:
        assert uv["status"] == "skipped"
    assert "ratio" in done.stdout
    assert output.with_suffix(".md").read_text().startswith("| workload |")
