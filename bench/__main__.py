"""`make bench`: benchmarks in fresh processes, written to bench/results.md and results.json.

Today it measures generation at scale: validating and rendering N copies of the example
pipelines (distinct names and SQL), and a no-op re-render. Run: .venv/bin/python -m bench [N]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPETITIONS = 3


def make_project(target: Path, copies: int) -> None:
    """A project with `copies` renamed copies of each example pipeline, each with its own SQL."""
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


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def summarize(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
    }


def main() -> None:
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    cli = str(Path(sys.executable).with_name("mwaa-elt"))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bench-") as scratch:
        project = Path(scratch)
        make_project(project, copies)
        runs: dict[str, list[float]] = {"validate": [], "render": [], "render (no-op)": []}
        for _ in range(REPETITIONS):
            shutil.rmtree(project / "build", ignore_errors=True)
            runs["validate"].append(timed([cli, "validate"], project))
            runs["render"].append(timed([cli, "render", "--stage", "dev"], project))
            runs["render (no-op)"].append(timed([cli, "render", "--stage", "dev"], project))
        results = {name: summarize(samples) for name, samples in runs.items()}
    report = {
        "specs": copies,
        "repetitions": REPETITIONS,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("mwaa-elt", "pydantic", "sqlglot", "ruff")},
        "generation": results,
    }
    out = Path(__file__).resolve().parent
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Benchmarks",
        "",
        f"{copies} specs (copies of the examples with distinct names and SQL), "
        f"{REPETITIONS} runs each in fresh processes, {report['cores']} cores, "
        f"Python {report['python']}; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + ".",
        "",
        "| step | median | min-max |",
        "|---|---|---|",
    ]
    for name, stats in results.items():
        lines.append(f"| {name} | {stats['median_s']} s | {stats['min_s']}-{stats['max_s']} s |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
