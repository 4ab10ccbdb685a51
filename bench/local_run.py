"""`mwaa-elt run movielens_scifi --stage dev`: the wall time of a local run, end to end.

Each repetition is the command as an analyst types it, in a fresh process: validate, render,
start the sandbox (moto on loopback with the Athena-on-DuckDB emulation), seed it, run the DAG
with Airflow's `dag.test()` in the stage's Airflow environment, report. The first run of an
Airflow environment migrates its metadata database once (cached afterwards); that run is made
before the timed ones and reported apart. Target: a median under a minute.

Run alone: .venv/bin/python -m bench.local_run [--quick]  (prints markdown)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIPELINE, STAGE, DATE = "movielens_scifi", "dev", "2024-01-01"
TARGET_SECONDS = 60.0


class BenchError(Exception):
    """The local run could not be measured."""


def _one() -> tuple[float, dict[str, Any]]:
    command = [
        str(Path(sys.executable).with_name("mwaa-elt")),
        "run",
        PIPELINE,
        "--stage",
        STAGE,
        "--date",
        DATE,
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise BenchError(
            f"`{' '.join(command[1:])}` failed: {done.stderr.strip()[-500:]}"
        ) from None
    return seconds, report


def run(quick: bool = False) -> dict[str, Any]:
    warm_up, first = _one()
    repetitions = 1 if quick else 5
    timings, reports = [], []
    for _ in range(repetitions):
        seconds, report = _one()
        timings.append(seconds)
        reports.append(report)
    tasks = [t for d in reports[-1]["dags"] for t in d["tasks"]]
    return {
        "pipeline": PIPELINE,
        "stage": STAGE,
        "airflow_version": reports[-1]["airflow_version"],
        "repetitions": repetitions,
        "first_run_s": round(warm_up, 1),
        "timings_s": [round(t, 1) for t in timings],
        "median_s": round(statistics.median(timings), 1),
        "ok": all(r["ok"] for r in reports) and first["ok"],
        "tasks": len(tasks),
        "task_states": sorted({t["state"] for t in tasks}),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The local-run section of bench/results.md."""
    verdict = "met" if result["median_s"] < TARGET_SECONDS else "missed"
    return [
        "## Local run (`mwaa-elt run`)",
        "",
        f"`mwaa-elt run {result['pipeline']} --stage {result['stage']} --date {DATE}` under "
        f"Airflow {result['airflow_version']}, {result['repetitions']} run(s), each a fresh "
        f"process: median **{result['median_s']} s** (target under {TARGET_SECONDS:.0f} s: "
        f"{verdict}); runs {', '.join(map(str, result['timings_s']))} s. The first run, which "
        f"also migrated a cached Airflow database, took {result['first_run_s']} s. "
        f"{result['tasks']} tasks, states {', '.join(result['task_states'])}; all runs clean: "
        f"{'yes' if result['ok'] else 'no'}. {result['cores']} cores, load average "
        f"{result['load_average'][0]} at the end.",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print("\n".join(markdown(run(quick=args.quick))))
