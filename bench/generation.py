"""Generation at scale: validate and render N specs, re-render with nothing or one file changed.

The specs are copies of the example pipelines with distinct names and SQL. Every step is the
installed `mwaa-elt` in a fresh process; wall time, CPU time (the process and its workers) and
the peak memory of its largest process are measured. Run alone: python -m bench generation
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.frozen import frozen_package

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("mwaa-elt"))
STAGE = "dev"
TARGETS_S = {"render": 10.0, "render (no-op)": 2.0}  # at HEADLINE specs, on two cores
LIBRARIES = ("mwaa-elt", "pydantic", "sqlglot", "sqlglotc", "jinja2", "ruff")


@dataclass(frozen=True)
class Size:
    scales: tuple[int, ...]
    headline: int
    repetitions: int


FULL = Size(scales=(250, 500, 1000, 2000), headline=1000, repetitions=3)
QUICK = Size(scales=(30, 60), headline=60, repetitions=1)


class BenchError(Exception):
    """The benchmark could not measure (a command failed); the message says which and why."""


def make_project(target: Path, copies: int) -> None:
    """A project with `copies` specs: renamed copies of the examples, each with its own SQL."""
    shutil.copy(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", target / "stacks")
    shutil.copytree(ROOT / "dag_templates", target / "dag_templates")
    pipelines = target / "pipelines"
    pipelines.mkdir()
    examples = [p for p in sorted((ROOT / "pipelines").iterdir()) if p.is_dir()]
    for index in range(copies):
        example = examples[index % len(examples)]
        name = f"{example.name}_{index:04d}"
        folder = pipelines / name
        shutil.copytree(example, folder)
        spec = (folder / f"{example.name}.yaml").read_text()
        spec = spec.replace(f"pipeline: {example.name}", f"pipeline: {name}")
        # Downstream copies wait for their own upstream copy, so every schedule resolves.
        for other in examples:
            spec = spec.replace(f"after: [{other.name}.", f"after: [{other.name}_{index - 1:04d}.")
        (folder / f"{example.name}.yaml").unlink()
        (folder / f"{name}.yaml").write_text(spec)
        for sql in folder.rglob("*.sql"):
            sql.write_text(sql.read_text() + f"\n-- variant {index}\n")


def measure(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """One command in a fresh process: wall and CPU seconds, peak RSS of its largest process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [CLI, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()  # small; read before waiting so the pipe never fills
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise BenchError(f"mwaa-elt {' '.join(args)} failed:\n{errors.decode()[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # with the workers it waited for
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def summarize(samples: list[dict[str, float]]) -> dict[str, float]:
    walls = [s["wall_s"] for s in samples]
    return {
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "cpu_median_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
        "peak_rss_mb": round(max(s["peak_rss_mb"] for s in samples), 1),
        "runs": len(samples),
    }


def _edit_one_sql(project: Path, repetition: int) -> None:
    sql = sorted((project / "pipelines").glob("movielens_scifi_*/sql/create_scifi.sql"))
    path = sql[repetition % len(sql)]
    path.write_text(path.read_text() + f"\n-- edited in repetition {repetition}\n")


def _scale(
    specs: int, size: Size, env: dict[str, str], progress: Callable[[str], None]
) -> dict[str, Any]:
    headline = specs == size.headline
    steps: dict[str, list[dict[str, float]]] = {"validate": [], "render": [], "render (no-op)": []}
    if headline:
        steps |= {"render (one SQL file edited)": [], "render, one process": []}
    serial = {**env, "MWAA_ELT_WORKERS": "1"}
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bench-generation-") as scratch:
        project = Path(scratch)
        make_project(project, specs)
        for repetition in range(size.repetitions):
            progress(f"generation: {specs} specs, repetition {repetition + 1}/{size.repetitions}")
            shutil.rmtree(project / "build", ignore_errors=True)  # output and render record
            steps["validate"].append(measure(["validate"], project, env))
            steps["render"].append(measure(["render", "--stage", STAGE], project, env))
            steps["render (no-op)"].append(measure(["render", "--stage", STAGE], project, env))
            if headline:
                _edit_one_sql(project, repetition)
                edited = measure(["render", "--stage", STAGE], project, env)
                steps["render (one SQL file edited)"].append(edited)
                forced = measure(["render", "--stage", STAGE, "--force"], project, serial)
                steps["render, one process"].append(forced)
    return {"specs": specs, "steps": {name: summarize(s) for name, s in steps.items()}}


def package_version(name: str) -> str:
    """The installed version of distribution `name`, or "-" when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def run(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every scale; the summary `markdown` writes the report from."""
    size = QUICK if quick else FULL
    say = progress or (lambda line: print(line, file=sys.stderr))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bench-code-") as scratch:
        env = frozen_package(Path(scratch))
        scales = [_scale(specs, size, env, say) for specs in size.scales]
    headline = next(s for s in scales if s["specs"] == size.headline)
    return {
        "quick": quick,
        "stage": STAGE,
        "repetitions": size.repetitions,
        "headline_specs": size.headline,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in LIBRARIES},
        "scales": scales,
        "targets": {}
        if quick
        else {
            step: {
                "target_s": target,
                "median_s": headline["steps"][step]["median_s"],
                "met": headline["steps"][step]["median_s"] <= target,
            }
            for step, target in TARGETS_S.items()
        },
    }


def _cpu_ms_per_spec(scale: dict[str, Any], step: str) -> float:
    return 1000 * scale["steps"][step]["cpu_median_s"] / scale["specs"]


def _wall_cpu(stats: dict[str, float]) -> str:
    return f"{stats['median_s']:.2f} s ({stats['cpu_median_s']:.2f} s)"


def markdown(result: dict[str, Any]) -> list[str]:
    """The generation section of bench/results.md."""
    scales = result["scales"]
    headline = next(s for s in scales if s["specs"] == result["headline_specs"])
    shown = ", ".join(f"{name} {value}" for name, value in result["versions"].items())
    lines = [
        "## Generation at scale",
        "",
        f"Copies of the example pipelines with distinct names and SQL, validated and rendered "
        f"for stage {result['stage']} by the installed `mwaa-elt`, each step in a fresh process, "
        f"{result['repetitions']} repetition(s); {result['cores']} cores (load average "
        f"{result['load_average']['before']:.1f} before, {result['load_average']['after']:.1f} "
        f"after), Python {result['python']}; {shown}. Wall time median (min-max); CPU is the "
        "process and its workers; memory is the peak RSS of the largest process.",
        "",
        f"### {headline['specs']} specs",
        "",
        "| step | wall median (min-max) | CPU | peak memory | target |",
        "|---|---|---|---|---|",
    ]
    for step, stats in headline["steps"].items():
        target = result["targets"].get(step)
        verdict = ""
        if target is not None:
            verdict = f"≤ {target['target_s']:g} s: {'met' if target['met'] else 'NOT met'}"
        lines.append(
            f"| {step} | {stats['median_s']:.2f} s ({stats['min_s']:.2f}-{stats['max_s']:.2f}) "
            f"| {stats['cpu_median_s']:.2f} s | {stats['peak_rss_mb']:.0f} MB | {verdict} |"
        )
    steps = headline["steps"]
    no_op = steps["render (no-op)"]["median_s"] / steps["render"]["median_s"]
    lines += ["", f"No-op re-render / full render: {no_op:.2f}."]
    if "render, one process" in steps:
        ratio = steps["render, one process"]["median_s"] / steps["render"]["median_s"]
        lines.append(
            f"One process / {result['cores']} worker processes (full render): {ratio:.2f}."
        )
    base = scales[0]
    lines += [
        "",
        "### Linearity",
        "",
        "Median wall time (CPU time) per scale; render cost per spec, in CPU time (steadier than "
        "wall time on a shared machine), and its ratio to the smallest scale's (1.0 = linear).",
        "",
        "| specs | validate | render | render CPU ms/spec (ratio) | render (no-op) "
        "| peak memory (render) |",
        "|---|---|---|---|---|---|",
    ]
    for scale in scales:
        s = scale["steps"]
        per_spec = _cpu_ms_per_spec(scale, "render")
        ratio = per_spec / _cpu_ms_per_spec(base, "render")
        lines.append(
            f"| {scale['specs']} | {_wall_cpu(s['validate'])} | {_wall_cpu(s['render'])} | "
            f"{per_spec:.1f} ({ratio:.2f}) | {_wall_cpu(s['render (no-op)'])} | "
            f"{s['render']['peak_rss_mb']:.0f} MB |"
        )
    return lines
