"""The write window after a broken lock: how long, and how many writes, a fenced promotion keeps
writing once its lock is gone, and what the fence costs.

A plan of N DAG files (synthetic pipelines) is applied into the dev stage's bucket in the
sandbox (moto's server on loopback) under the stage lock, with every write fenced
(`lock.check_held`, as `promote` does). When the K-th DAG PutObject is sent, another client
deletes the lock (what `--force-unlock` does). Every PutObject the applying client sends is
timed by a botocore event hook; the window is the delay from the break to the last DAG write
the fenced run started after it. Repeated R times on an emptied bucket.

Run alone: .venv/bin/python -m bench.fence [--quick]  (prints markdown)
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import lock
from mwaa_elt.promote.apply import WORKERS, apply_plan
from mwaa_elt.promote.bundle import pack
from mwaa_elt.promote.identity import Identity
from mwaa_elt.promote.manifest import empty_manifest
from mwaa_elt.promote.plan import PipelineBuild, build_plan
from mwaa_elt.promote.sandbox import create_stage_buckets, sandbox
from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage, load_all_stages

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = Identity("arn:aws:iam::123456789012:user/bench", "2026-01-01T00:00:00+00:00", "bench")
TEMPLATES = pack({"dag.py.j2": b"{{ view }}\n"})


def _builds(stage: Stage, count: int) -> list[PipelineBuild]:
    builds = []
    for i in range(count):
        name = f"p{i:05d}"
        dag = f"# {name}\n" + "x = 1\n" * 200  # about 1.2 kB, like a small DAG file
        builds.append(
            PipelineBuild(
                name=name,
                bundle=pack({f"{name}.yaml": f"name: {name}\n".encode()}),
                templates=TEMPLATES,
                dag_key=f"{stage.dags_prefix}{name}.py",
                dag=dag.encode(),
            )
        )
    return builds


def _one(endpoint: str, stages: dict[str, Stage], dags: int, break_at: int) -> dict[str, Any]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    create_stage_buckets(endpoint, stages)
    stage = stages["dev"]
    client = make_client("s3", stage.region)
    store = StageStore(stage, client)
    breaker = StageStore(stage, make_client("s3", stage.region))
    plan = build_plan(
        stage,
        _builds(stage, dags),
        empty_manifest(stage.name),
        None,
        source="working-tree",
        identity=IDENTITY,
    )
    sent: list[tuple[float, str, str]] = []  # (time, operation, key)
    mutex = threading.Lock()
    broken_at: list[float] = []
    dag_puts = [0]

    def before_send(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        key = request.url.split(f"/{stage.source_bucket}/", 1)[-1].split("?", 1)[0]
        now = time.monotonic()
        with mutex:
            sent.append((now, operation, key))
            if operation == "PutObject" and key.startswith(stage.dags_prefix):
                dag_puts[0] += 1
                trigger = dag_puts[0] == break_at
            else:
                trigger = False
        if trigger:
            threading.Thread(target=lambda: _break(breaker, broken_at)).start()

    client.meta.events.register("before-send.s3", before_send)
    held = lock.acquire(store, "arn:bench")
    stopped = False
    try:
        apply_plan(store, plan, guard=lambda: lock.check_held(store, held))
    except ConfigError:
        stopped = True
    if not broken_at:
        raise RuntimeError("the lock was never broken: too few DAG files for --break-at")
    t_break = broken_at[0]
    after = [t for t, op, key in sent if op == "PutObject" and t > t_break and "dags/" in key]
    proofs = [1 for _, op, key in sent if op == "HeadObject" and key == stage.lock_key]
    writes = [1 for _, op, _ in sent if op == "PutObject"]
    return {
        "stopped": stopped,
        "writes_after_break": len(after),
        "window_seconds": (max(after) - t_break) if after else 0.0,
        "writes": len(writes),
        "proofs": len(proofs),
    }


def _break(store: StageStore, broken_at: list[float]) -> None:
    lock.force_unlock(store)
    broken_at.append(time.monotonic())


def run(quick: bool = False) -> dict[str, Any]:
    dags, break_at, repetitions = (200, 40, 1) if quick else (2000, 500, 5)
    stages = load_all_stages(ROOT / "stacks")
    with sandbox(stages) as running:
        import os

        os.environ["AWS_ENDPOINT_URL"] = running.endpoint_url
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        runs = [_one(running.endpoint_url, stages, dags, break_at) for _ in range(repetitions)]
    windows = [r["window_seconds"] for r in runs]
    late = [r["writes_after_break"] for r in runs]
    return {
        "dags": dags,
        "break_at": break_at,
        "workers": WORKERS,
        "fence_seconds": lock.FENCE_SECONDS,
        "runs": runs,
        "window_max_seconds": max(windows),
        "window_median_seconds": statistics.median(windows),
        "writes_after_break_max": max(late),
        "writes_after_break_median": statistics.median(late),
        "all_stopped": all(r["stopped"] for r in runs),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    per_write = [r["proofs"] / max(1, r["writes"]) for r in result["runs"]]
    return [
        "## Fencing: the write window after a broken lock",
        "",
        f"{result['dags']} DAG files applied by {result['workers']} writers into the sandbox; "
        f"the lock deleted when DAG write {result['break_at']} is sent; fence interval "
        f"{result['fence_seconds']:g} s; {len(result['runs'])} run(s).",
        "",
        "| measure | median | max |",
        "|---|---|---|",
        f"| DAG writes started after the break | {result['writes_after_break_median']:g} | "
        f"{result['writes_after_break_max']} |",
        f"| last such write, seconds after the break | {result['window_median_seconds']:.2f} | "
        f"{result['window_max_seconds']:.2f} |",
        f"| fence HEADs per PutObject | {statistics.median(per_write):.3f} | "
        f"{max(per_write):.3f} |",
        "",
        "Every run stopped with the lock-broken error."
        if result["all_stopped"]
        else "**A run did not stop**: the fence failed.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.quick)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
