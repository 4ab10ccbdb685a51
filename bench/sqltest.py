"""SQL unit tests at scale: `mwaa-elt test` over 1,000 tests in a fresh process.

The project holds copies of the example pipelines with their test files (distinct names), cut to
exactly the headline number of tests. Wall and CPU time of the whole command (start-up, spec
validation, preparation, DuckDB) and the time it reports for running the tests alone.
Run alone: python -m bench sqltest
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.frozen import frozen_package
from bench.generation import CLI, make_project, package_version

TARGET_S = 10.0  # 1,000 tests, on two cores
LIBRARIES = ("mwaa-elt", "duckdb", "sqlglot", "pydantic", "jinja2")


@dataclass(frozen=True)
class Size:
    tests: int
    repetitions: int


FULL = Size(tests=1000, repetitions=3)
QUICK = Size(tests=60, repetitions=1)


class BenchError(Exception):
    """The benchmark could not measure (the command failed); the message says why."""


def _count(path: Path) -> int:
    return len(yaml.safe_load(path.read_text())["tests"])


def make_tests_project(target: Path, tests: int) -> int:
    """Copies of the examples (with their tests) until `tests` tests exist; returns the specs."""
    examples = [p for p in sorted((Path(__file__).parent.parent / "pipelines").iterdir())]
    per_round = sum(_count(f) for e in examples if e.is_dir() for f in e.glob("tests/*.yaml"))
    if per_round == 0:
        raise BenchError("the example pipelines have no tests to copy")
    specs = len([e for e in examples if e.is_dir()])
    copies = specs * -(-tests // per_round)
    make_project(target, copies)
    files = sorted((target / "pipelines").glob("*/tests/*.yaml"))
    total = 0
    for path in files:
        count = _count(path)
        if total + count <= tests:
            total += count
            continue
        keep = tests - total
        if keep == 0:
            path.unlink()
        else:
            data = yaml.safe_load(path.read_text())
            data["tests"] = data["tests"][:keep]
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            total += keep
    if total != tests:
        raise BenchError(f"made {total} tests, wanted {tests}")
    return copies


def measure(project: Path, env: dict[str, str]) -> dict[str, float]:
    """`mwaa-elt test --json` in a fresh process: wall, CPU, peak RSS, and its own counts."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [CLI, "test", "--json"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, errors = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchError(
            f"mwaa-elt test failed ({process.returncode}):\n{(out + errors).decode()[-2000:]}"
        )
    report = json.loads(out)
    return {
        "wall_s": wall,
        "run_s": report["seconds"],
        "passed": report["passed"],
        "tests": len(report["tests"]),
    }


def _cpu_of(project: Path, env: dict[str, str]) -> dict[str, float]:
    """CPU seconds and peak RSS of one more run (os.wait4 needs the process unreaped)."""
    process = subprocess.Popen(
        [CLI, "test"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchError("mwaa-elt test failed")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def run(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure `mwaa-elt test` over the headline number of tests."""
    size = QUICK if quick else FULL
    say = progress or (lambda line: print(line, file=sys.stderr))
    load_before = os.getloadavg()[0]
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bench-sqltest-") as scratch:
        env = frozen_package(Path(scratch))
        project = Path(scratch) / "project"
        project.mkdir()
        specs = make_tests_project(project, size.tests)
        for repetition in range(size.repetitions):
            say(f"sqltest: {size.tests} tests, repetition {repetition + 1}/{size.repetitions}")
            samples.append(measure(project, env))
        cpu = _cpu_of(project, env)
    if any(s["passed"] != size.tests for s in samples):
        raise BenchError(f"not every one of {size.tests} tests passed: {samples}")
    walls = [s["wall_s"] for s in samples]
    median = statistics.median(walls)
    return {
        "tests": size.tests,
        "specs": specs,
        "repetitions": size.repetitions,
        "wall_median_s": round(median, 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "run_median_s": round(statistics.median(s["run_s"] for s in samples), 3),
        "cpu_s": round(cpu["cpu_s"], 3),
        "peak_rss_mb": round(cpu["peak_rss_mb"], 1),
        "target_s": TARGET_S,
        "met": median <= TARGET_S,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in LIBRARIES},
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The SQL tests section of bench/results.md."""
    shown = ", ".join(f"{name} {value}" for name, value in result["versions"].items())
    per_test = 1000 * result["run_median_s"] / result["tests"]
    verdict = "met" if result["met"] else "NOT met"
    return [
        "## SQL unit tests",
        "",
        f"`mwaa-elt test` over {result['tests']} tests (copies of the examples' tests, "
        f"{result['specs']} specs), in a fresh process, {result['repetitions']} repetition(s); "
        f"{result['cores']} cores (load average {result['load_average']['before']:.1f} before, "
        f"{result['load_average']['after']:.1f} after), Python {result['python']}; {shown}.",
        "",
        "| what | time |",
        "|---|---|",
        f"| whole command, wall median (min-max) | {result['wall_median_s']:.2f} s "
        f"({result['wall_min_s']:.2f}-{result['wall_max_s']:.2f}) |",
        f"| whole command, CPU | {result['cpu_s']:.2f} s |",
        f"| running the tests on DuckDB (median) | {result['run_median_s']:.2f} s "
        f"({per_test:.1f} ms per test) |",
        f"| peak memory | {result['peak_rss_mb']:.0f} MB |",
        "",
        f"Target: {result['tests']} tests in ≤ {result['target_s']:g} s on 2 cores: {verdict}.",
    ]
