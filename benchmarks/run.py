"""Run Cinema's benchmarks beside the baselines and peers, and print ratios.

Usage (from the repository root)::

    hatch run bench:run                 # default: 3 runs of everything, median
    hatch run bench:run --quick         # 1 run with smaller sizes (~1 minute)
    python benchmarks/run.py --only 'core.*' --runs 5
    python benchmarks/run.py --list

Every workload runs in a fresh subprocess (``run.py --worker ID --size N``), so that one
measurement's heap, caches and threads never leak into the next. The runs are interleaved
(run 1 of everything, then run 2, ...) so that a burst of noise on the shared machine hits
several workloads a little rather than one workload a lot. The figures are medians; ratios
divide medians measured in this same invocation.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    # Run as a script, Python puts benchmarks/ on sys.path; the workloads import
    # ``benchmarks.*`` by its full name, as mypy and the smoke test see them.
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import (  # noqa: E402
    CLOCK_ENV,
    CLOCKS,
    GROUPS,
    Metrics,
    Skip,
    Workload,
    discover,
    format_value,
    missing_requirement,
)

RESULT_MARK = "@@cinema-bench-result@@ "
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.json"


# --- the worker side ---------------------------------------------------------------------------


def worker(workload_id: str, size: int) -> int:
    """Run one workload in this (fresh) process and print its result as one marked JSON line."""
    result: dict[str, Any]
    try:
        workload = discover()[workload_id]
        missing = missing_requirement(workload)
        if missing is not None:
            raise Skip(f"{missing} is not installed")
        metrics = workload.run(size)
        bad = [k for k in workload.metrics if not isinstance(metrics.get(k), int | float)]
        if bad:
            raise TypeError(f"{workload_id} did not return the metrics {bad}")
        result = {"metrics": {k: float(v) for k, v in metrics.items()}}
    except Skip as skip:
        result = {"skipped": str(skip)}
    except BaseException:  # report anything, including KeyboardInterrupt, to the parent
        result = {"error": traceback.format_exc()}
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


def profile(workload_id: str, workload: Workload, size: int, top: int = 30) -> int:
    """Run one workload under cProfile; print its metrics and the hottest functions."""
    import cProfile
    import pstats

    missing = missing_requirement(workload)
    if missing is not None:
        print(f"{workload_id}: skipped, {missing} is not installed", file=sys.stderr)
        return 0
    profiler = cProfile.Profile()
    metrics = profiler.runcall(workload.run, size)
    print(f"{workload_id} (n={size}, under cProfile: slower than unprofiled): {metrics}")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    return 0


# --- the parent side ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything measured for one workload over all runs."""

    workload: Workload
    size: int
    samples: list[Metrics] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: list[float] = field(default_factory=list)

    def median(self) -> Metrics:
        keys = {k for sample in self.samples for k in sample}
        return {k: statistics.median(s[k] for s in self.samples if k in s) for k in sorted(keys)}

    def spread(self, metric: str) -> float | None:
        """(max - min) / median over the runs: how noisy the figure was."""
        values = [s[metric] for s in self.samples if metric in s]
        middle = statistics.median(values) if values else 0.0
        if len(values) < 2 or middle == 0:
            return None
        return (max(values) - min(values)) / abs(middle)


def run_one(
    workload_id: str, workload: Workload, size: int, clock_name: str
) -> tuple[dict[str, Any], float]:
    """Run ``workload`` in a subprocess; return its decoded result and the wall time."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", workload_id]
    command += ["--size", str(size)]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=workload.timeout,
            check=False,
            env=os.environ | {CLOCK_ENV: clock_name},
        )
    except subprocess.TimeoutExpired:
        elapsed = time.perf_counter() - started
        return {"error": f"timed out after {workload.timeout:g} s"}, elapsed
    elapsed = time.perf_counter() - started
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            decoded: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return decoded, elapsed
    tail = (done.stderr or done.stdout)[-2000:]
    return {"error": f"worker exited with {done.returncode} and no result:\n{tail}"}, elapsed


def select(available: dict[str, Workload], patterns: list[str], quick: bool) -> dict[str, Workload]:
    """The workloads to run: those matching ``patterns`` (all if none), plus what they compare
    against, so that every ratio can be computed in this run."""
    chosen = {
        wid: w
        for wid, w in available.items()
        if not (quick and w.full_only)
        and (not patterns or any(fnmatch.fnmatchcase(wid, p) for p in patterns))
    }
    pending = list(chosen.values())
    while pending:
        for reference in pending.pop().compare.values():
            ref_id = reference.partition(":")[0]
            if ref_id in available and ref_id not in chosen:
                chosen[ref_id] = available[ref_id]
                pending.append(available[ref_id])
    order = list(GROUPS)
    ranked = sorted(
        chosen,
        key=lambda wid: (
            order.index(chosen[wid].group) if chosen[wid].group in order else len(order),
            list(available).index(wid),
        ),
    )
    return {wid: chosen[wid] for wid in ranked}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def source_version() -> str | None:
    """The git commit measured (``+dirty`` when the work tree has changes), if known."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def build_rows(outcomes: dict[str, Outcome]) -> list[dict[str, Any]]:
    """One row per (workload, metric): median, spread, ratio against its reference, target."""
    rows: list[dict[str, Any]] = []
    medians = {wid: o.median() for wid, o in outcomes.items()}
    for wid, outcome in outcomes.items():
        workload = outcome.workload
        base = {
            "id": wid,
            "title": workload.title,
            "group": workload.group,
            "backend": workload.backend,
            "size": outcome.size,
        }
        if outcome.skipped is not None or not outcome.samples:
            note = outcome.skipped or "failed: " + outcome.errors[0].strip().splitlines()[-1]
            rows.append(
                base
                | {"metric": None, "status": "skipped" if outcome.skipped else "error"}
                | {"note": note}
            )
            continue
        for metric in workload.metrics:
            value = medians[wid].get(metric)
            if value is None:
                continue
            ratio: float | None = None
            reference = workload.compare.get(metric)
            if reference is not None:
                ref_id, _, ref_metric = reference.partition(":")
                ref_value = medians.get(ref_id, {}).get(ref_metric)
                if ref_value:
                    ratio = value / ref_value
            target = workload.targets.get(metric)
            met = target.met(value, ratio) if target is not None else None
            rows.append(
                base
                | {
                    "metric": metric,
                    "status": "ok" if not outcome.errors else "partial",
                    "median": value,
                    "spread": outcome.spread(metric),
                    "samples": [s[metric] for s in outcome.samples if metric in s],
                    "vs": reference,
                    "ratio": ratio,
                    "target": target.describe(metric) if target is not None else None,
                    "met": met,
                    "note": f"{len(outcome.errors)} run(s) failed" if outcome.errors else None,
                }
            )
    return rows


def _short_reference(reference: str | None, metric: str) -> str:
    """``baseline.asyncio_queue[asyncio]:msgs_per_s`` -> ``asyncio_queue[asyncio]``."""
    if reference is None:
        return ""
    ref_id, _, ref_metric = reference.partition(":")
    ref_id = ref_id.removeprefix("baseline.")
    return ref_id if ref_metric == metric else f"{ref_id} {ref_metric}"


def _mark(met: bool | None) -> str:
    return {True: "PASS", False: "MISS", None: ""}[met]


def render_text(rows: list[dict[str, Any]], header: str) -> str:
    """The table printed on the terminal."""
    table = [("workload", "metric", "median", "+-", "ratio", "vs", "target", "")]
    for row in rows:
        if row["metric"] is None:
            table.append((row["id"], row["status"].upper(), "", "", "", row["note"], "", ""))
            continue
        table.append(
            (
                row["id"],
                row["metric"],
                format_value(row["metric"], row["median"]),
                f"{row['spread'] * 100:.0f}%" if row["spread"] is not None else "",
                f"{row['ratio']:.2f}x" if row["ratio"] is not None else "",
                _short_reference(row["vs"], row["metric"]),
                row["target"] or "",
                _mark(row["met"]),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [header, ""]
    group = None
    for index, cells in enumerate(table):
        if index > 0 and rows[index - 1]["group"] != group:
            group = rows[index - 1]["group"]
            lines.append(
                f"-- {group} " + "-" * max(0, sum(widths) + 2 * len(widths) - 4 - len(group))
            )
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    legend = {row["id"]: row["title"] for row in rows}
    lines += ["", "workloads:"] + [f"  {wid}: {title}" for wid, title in legend.items()]
    return "\n".join(lines)


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown, for the README."""
    lines = [
        "| workload | backend | metric | median | ratio | vs | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        backend = row["backend"] or "-"
        if row["metric"] is None:
            lines.append(
                f"| {row['title']} | {backend} | {row['status']} | | | {row['note']} | | |"
            )
            continue
        ratio = f"**{row['ratio']:.2f}x**" if row["ratio"] is not None else ""
        vs = f"`{row['vs'].split(':')[0]}`" if row["vs"] else ""
        lines.append(
            f"| {row['title']} | {backend} | {row['metric']} | "
            f"{format_value(row['metric'], row['median'])} | {ratio} | {vs} | "
            f"{row['target'] or ''} | {_mark(row['met'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 run with smaller sizes")
    parser.add_argument("--runs", type=int, help="runs per workload (default 3; 1 with --quick)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run the workloads whose id matches this glob (repeatable), e.g. 'core.*'",
    )
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="cpu",
        help="time single-process workloads on the process's CPU time (default: immune to "
        "other processes' load) or on the wall clock; see benchmarks/README.md",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON to write")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--profile",
        metavar="ID",
        help="run one workload in this process under cProfile and print its hottest functions",
    )
    parser.add_argument("--worker", metavar="ID", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        if args.size is None:
            parser.error("--worker needs --size")
        return worker(args.worker, args.size)

    # Before the workload modules are imported: they read it (in --profile, in this process).
    os.environ[CLOCK_ENV] = args.clock
    available = discover()
    if args.profile is not None:
        if args.profile not in available:
            print(f"unknown workload {args.profile!r}; see --list", file=sys.stderr)
            return 2
        workload = available[args.profile]
        size = args.size or (workload.quick_size if args.quick else workload.size)
        return profile(args.profile, workload, size)
    plan = select(available, args.only, args.quick)
    if args.list:
        for wid, w in plan.items():
            size = w.quick_size if args.quick else w.size
            print(f"{wid:40} {w.group:9} n={size:<9} {w.title}")
        return 0
    if not plan:
        print("no workload matches", file=sys.stderr)
        return 2

    runs = args.runs or (1 if args.quick else 3)
    started_at = datetime.datetime.now(datetime.UTC)
    host = machine()
    version = source_version()
    outcomes = {wid: Outcome(w, w.quick_size if args.quick else w.size) for wid, w in plan.items()}
    for outcome in outcomes.values():
        missing = missing_requirement(outcome.workload)
        if missing is not None:
            outcome.skipped = f"skipped: {missing} is not installed"
    todo = [wid for wid, o in outcomes.items() if o.skipped is None]
    runs_of = {wid: min(runs, plan[wid].max_runs or runs) for wid in todo}
    total, step = sum(runs_of.values()), 0
    for run in range(1, runs + 1):
        for wid in todo:
            outcome = outcomes[wid]
            if outcome.skipped is not None or run > runs_of[wid]:
                continue
            step += 1
            print(
                f"[{step:3}/{total}] run {run}/{runs_of[wid]} {wid} (n={outcome.size}) ...",
                end=" ",
                file=sys.stderr,
                flush=True,
            )
            result, seconds = run_one(wid, outcome.workload, outcome.size, args.clock)
            outcome.seconds.append(seconds)
            if "metrics" in result:
                outcome.samples.append(result["metrics"])
                print(f"{seconds:.1f} s", file=sys.stderr)
            elif "skipped" in result:
                outcome.skipped = f"skipped: {result['skipped']}"
                print(outcome.skipped, file=sys.stderr)
            else:
                outcome.errors.append(result["error"])
                print(f"FAILED\n{result['error']}", file=sys.stderr)
    elapsed = (datetime.datetime.now(datetime.UTC) - started_at).total_seconds()
    host["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    rows = build_rows(outcomes)
    mode = "quick" if args.quick else "default"
    header = (
        f"Cinema benchmarks, {started_at:%Y-%m-%d %H:%M} UTC, {mode} mode, median of {runs} "
        f"run(s), {args.clock} clock, {elapsed:.0f} s, commit {version or '?'}\n"
        f"{host['python']} on {host['platform']}, "
        f"{host['cpus']} CPUs ({host['cpu']}), load average at start "
        f"{(host['loadavg_at_start'] or [0.0])[0]:.2f}\n"
        "ratio = median / median of the 'vs' workload, measured in this same run"
    )
    print(render_text(rows, header))
    markdown = render_markdown(rows)
    if args.markdown:
        print()
        print(markdown)

    report = {
        "date": started_at.isoformat(timespec="seconds"),
        "mode": mode,
        "runs": runs,
        "clock": args.clock,
        "commit": version,
        "seconds": round(elapsed, 1),
        "machine": host,
        "rows": rows,
        "workloads": {
            wid: {
                "title": o.workload.title,
                "group": o.workload.group,
                "backend": o.workload.backend,
                "size": o.size,
                "samples": o.samples,
                "median": o.median(),
                "skipped": o.skipped,
                "errors": o.errors,
                "wall_seconds": o.seconds,
            }
            for wid, o in outcomes.items()
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown + "\n")
    print(f"\nwrote {args.output} and {args.output.with_suffix('.md')}", file=sys.stderr)
    return 1 if any(o.errors for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
