"""Promotion at scale against `aws s3 sync`: requests, bytes, time and correctness.

A project of N pipelines (copies of the examples with distinct names and SQL) is promoted into
the dev stage's bucket in the sandbox (moto's server on loopback) in a row: into an empty
bucket with no local record (as from a fresh clone), into the emptied bucket again after
`mwaa-elt render` of the tree, again with no change (also with untracked files about), after
one pipeline's SQL gained a line (one DAG changes size), and after one character of that line
changed (the DAG keeps its size). Each run is a fresh process whose botocore requests are
counted by an event hook (bench/promotion_hooks.py).

The same rendered folder (`mwaa-elt render --stage dev --out DIR`, outside the timing) is pushed
the way the MWAA CI/CD guides do it, with the AWS CLI from PyPI (.venv-bench-awscli):
`aws s3 sync DIR/dags s3://BUCKET/dags/ --delete`, then the same for scripts/. Three variants:

- `aws s3 sync`: a build folder kept between runs where only changed files are rewritten, the
  best case for sync's size-and-modification-time comparison;
- `aws s3 sync --size-only`: the common CI workaround, which cannot see a same-size edit;
- `aws s3 sync (fresh checkout)`: the folder rendered anew before each run, as in a CI job on a
  fresh checkout, where every file is newer than its object.

After every run the bucket's dags/ and scripts/ are compared with the rendered folder (ETag =
MD5 of single-part uploads). Each sequence starts from an emptied emulator; before the first,
an untimed `mwaa-elt promote --plan` leaves the working copy the records a CI job's plan step
leaves (the fresh-clone scenario hides them).

Run alone: .venv/bin/python -m bench.promotion [--quick] [--json FILE]  (prints markdown)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.frozen import frozen_package
from bench.generation import make_project

ROOT = Path(__file__).resolve().parent.parent
HOOKS = Path(__file__).resolve().parent / "promotion_hooks.py"
FIRST_CPU = Path(__file__).resolve().parent / "first_promotion_cpu.py"
AWSCLI_VENV = ROOT / ".venv-bench-awscli"
STAGE = "dev"
TIMES, DASH = "\u00d7", "\u2013"

FIRST, NO_CHANGE, ONE_CHANGE, SAME_SIZE = "first", "no change", "one change", "same-size edit"
FIRST_COLD = "first, fresh clone"
UNTRACKED = "no change, untracked files"
# The untracked-files run follows the clean no-change run it is compared with, at the same
# version and bucket state: the difference is the untracked files alone.
# The cold first promotion comes first, into the emptied bucket; the bucket is emptied again for
# the first promotion after `mwaa-elt render`.
SCENARIOS = (FIRST_COLD, FIRST, NO_CHANGE, UNTRACKED, ONE_CHANGE, SAME_SIZE)
# Which version of the project each scenario promotes.
STATE_OF = {
    FIRST_COLD: "base",
    FIRST: "base",
    NO_CHANGE: "base",
    UNTRACKED: "base",
    ONE_CHANGE: "changed",
    SAME_SIZE: "same_size",
}
UNTRACKED_FILES = 2000
# The no-change and untracked-files runs leave the bucket as it was, and each takes about a
# second: a sequence runs them this many times, alternately, so that their medians rest on more
# samples than a machine's passing slowness and each pair is measured under the same conditions.
STEADY_RUNS = 3
SCENARIO_TEXT = {
    FIRST_COLD: (
        "first promotion into an empty bucket from a tree with no local record (no earlier "
        "render, as in a fresh clone); sync pushes its folder into the emptied bucket again"
    ),
    FIRST: (
        "first promotion into an empty bucket after `mwaa-elt render` of the tree (the render "
        "whose folder sync pushes), which promotion takes up where its inputs are unchanged"
    ),
    NO_CHANGE: "re-promotion with no change",
    ONE_CHANGE: "one pipeline's SQL gained a line (its DAG changes size)",
    SAME_SIZE: "one character of that SQL changed (its DAG keeps its size)",
    UNTRACKED: (
        f"re-promotion with no change while {UNTRACKED_FILES:,} untracked files (a build "
        "folder git does not ignore) sit in the project; sync pushes its folder again"
    ),
}
# The edit: a line added to one SQL file, then one character of it changed.
ADDED_LINE = "-- reviewed: a\n"
SAME_SIZE_LINE = "-- reviewed: b\n"
TARGET_NO_CHANGE_REQUESTS = 3


@dataclass(frozen=True)
class Size:
    """How much to measure: pipelines in the project, fresh-process sequences per tool."""

    pipelines: int
    repetitions: int


FULL = Size(pipelines=1000, repetitions=3)
QUICK = Size(pipelines=12, repetitions=1)
# Larger projects, measured only when asked (`--sizes 1000,5000` or BENCH_PROMOTION_SIZES):
# mwaa-elt paired with `aws s3 sync`, the pair the targets name.
LARGE_REPETITIONS = 2
SIZES_VARIABLE = "BENCH_PROMOTION_SIZES"


@dataclass(frozen=True)
class Tool:
    """A way of getting the rendered pipelines into the bucket."""

    name: str
    sync_flags: tuple[str, ...] = ()  # None for mwaa-elt
    fresh_folder: bool = False  # re-render (every file new) before each run
    is_sync: bool = True


MWAA_ELT = Tool("mwaa-elt", is_sync=False)
SYNC = Tool("aws s3 sync")
SYNC_SIZE_ONLY = Tool("aws s3 sync --size-only", sync_flags=("--size-only",))
SYNC_FRESH = Tool("aws s3 sync (fresh checkout)", fresh_folder=True)
TOOLS = (MWAA_ELT, SYNC, SYNC_SIZE_ONLY, SYNC_FRESH)


class BenchError(Exception):
    """The benchmark cannot measure what it claims to; the message says why."""


# -- the project and its rendered states ------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """The SQL file the one-change scenarios edit, and its text as generated."""

    pipeline: str
    path: Path
    original: str

    def text(self, state: str) -> str:
        """The file's text in `state` (base, changed, same_size)."""
        base = self.original if self.original.endswith("\n") else self.original + "\n"
        return {
            "base": self.original,
            "changed": base + ADDED_LINE,
            "same_size": base + SAME_SIZE_LINE,
        }[state]

    def apply(self, state: str) -> None:
        """Put the project in `state`."""
        self.path.write_text(self.text(state))


def _git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def build_project(project: Path, pipelines: int) -> Edit:
    """A committed project of `pipelines` pipelines, and the SQL file the scenarios edit."""
    project.mkdir(parents=True)
    make_project(project, pipelines)
    environment = project / "infra" / "environment"
    if not environment.exists():  # promotion's requirements gate reads requirements.txt
        shutil.copytree(ROOT / "infra" / "environment", environment)
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "bench project")
    folders = sorted(p for p in (project / "pipelines").iterdir() if p.is_dir())
    middle = len(folders) // 2
    for folder in folders[middle:] + folders[:middle]:
        sql = sorted(folder.rglob("*.sql"))
        if sql:
            return Edit(folder.name, sql[0], sql[0].read_text())
    raise BenchError("no generated pipeline has a SQL file to edit")


def _cli() -> str:
    return str(Path(sys.executable).with_name("mwaa-elt"))


def source_state() -> dict[str, Any]:
    """The commit measured and whether the package had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--", "src", "dag_templates")),
    }


def render(project: Path, out: Path, env: dict[str, str]) -> None:
    """`mwaa-elt render --stage dev --out OUT`, outside any timing."""
    run_untimed(project, env, "render", "--stage", STAGE, "--out", str(out), "--json")


def plan_once(project: Path, env: dict[str, str]) -> None:
    """`mwaa-elt promote --to dev --plan` into the emptied bucket, outside any timing, before the
    first sequence: the working copy has planned a promotion into the stage, as a CI job's
    `--plan` step does before its `--yes` one. Every sequence then finds the local records such
    a run leaves (the Airflow of the stage's gates, started before the command line is imported:
    `promote.airflow_ahead`), not only those after the first; a fresh clone hides them all."""
    run_untimed(project, env, "promote", "--to", STAGE, "--plan", "--skip-mwaa-checks", "--json")


def run_untimed(project: Path, env: dict[str, str], *args: str) -> None:
    """`mwaa-elt ARGS` in `project`, outside any timing; BenchError with its errors if it fails."""
    done = subprocess.run([_cli(), *args], cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"mwaa-elt {args[0]} failed:\n{done.stderr}")


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by posix path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def render_states(
    project: Path, edit: Edit, out: Path, env: dict[str, str]
) -> dict[str, dict[str, bytes]]:
    """The rendered folder of each project state, after proving the edits do what they claim."""
    states: dict[str, dict[str, bytes]] = {}
    for state in ("base", "changed", "same_size"):
        edit.apply(state)
        # One folder: after the first, render's record redoes only the edited pipeline.
        render(project, out / "work", env)
        states[state] = tree(out / "work")
    edit.apply("base")
    dag = f"dags/{edit.pipeline}.py"
    for before, after, same_size in (("base", "changed", False), ("changed", "same_size", True)):
        old, new = states[before], states[after]
        differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if differing != [dag]:
            raise BenchError(f"{before} → {after} should change only {dag}, changed {differing}")
        if (len(old[dag]) == len(new[dag])) != same_size:
            raise BenchError(f"{before} → {after}: {dag} size equality is not {same_size}")
    return states


# -- the emulator -----------------------------------------------------------------------------


@contextmanager
def running_sandbox(project: Path, scratch: Path, env: dict[str, str]) -> Iterator[str]:
    """`mwaa-elt sandbox` on a free loopback port for the block; yields its endpoint."""
    from mwaa_elt.promote.sandbox import free_port

    ready = scratch / "sandbox-ready"
    log = (scratch / "sandbox.log").open("w")
    server = subprocess.Popen(
        [_cli(), "sandbox", "--port", str(free_port()), "--ready-file", str(ready)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() or not ready.read_text().strip():
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the sandbox did not start; see {scratch / 'sandbox.log'}")
            time.sleep(0.2)
        yield ready.read_text().strip()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def reset(endpoint: str, stages: Mapping[str, Any]) -> None:
    """Empty the emulator and recreate every stage's bucket, versioned as Pulumi makes it."""
    from mwaa_elt.promote.sandbox import create_stage_buckets

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    create_stage_buckets(endpoint, stages)


def bucket_objects(endpoint: str, stage: Any) -> dict[str, str]:
    """The ETag of every object under the stage's dags/ and scripts/ prefixes."""
    import boto3

    s3 = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=stage.region
    ).client("s3", endpoint_url=endpoint)
    found: dict[str, str] = {}
    for prefix in (stage.dags_prefix, stage.scripts_prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=stage.source_bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["ETag"].strip('"')
    return found


def matches(endpoint: str, stage: Any, rendered: Mapping[str, bytes]) -> dict[str, Any]:
    """Whether dags/ and scripts/ hold exactly the rendered files, byte for byte."""
    live = bucket_objects(endpoint, stage)
    if any("-" in etag for etag in live.values()):
        raise BenchError("a multipart object: its ETag is not the MD5 of its content")
    expected = {key: hashlib.md5(body).hexdigest() for key, body in rendered.items()}
    stale = sorted(k for k in expected.keys() & live.keys() if expected[k] != live[k])
    missing = sorted(expected.keys() - live.keys())
    extra = sorted(live.keys() - expected.keys())
    return {
        "ok": not (stale or missing or extra),
        "stale": stale[:5],
        "missing": len(missing),
        "extra": len(extra),
    }


# -- measured runs ----------------------------------------------------------------------------


def _environment(base: dict[str, str], endpoint: str, region: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def hooked(
    python: Path, tool: str, args: list[str], cwd: Path, env: dict[str, str], record: Path
) -> dict[str, Any]:
    """Run `tool args` under the request hooks in a fresh process; its timings and requests."""
    start = time.monotonic()
    done = subprocess.run(
        [str(python), str(HOOKS), str(record), tool, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    end = time.monotonic()
    load = os.getloadavg()[0]
    if done.returncode != 0:
        raise BenchError(
            f"{tool} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    data = json.loads(record.read_text())
    first = data["first_send"] or end
    last = data["last_response"] or first
    return {
        "wall_s": end - start,
        "aws_s": in_flight(data["timeline"]),
        "span_s": last - first,
        "writes_s": writes_span(data["timeline"]),
        "operations": data["operations"],
        "stdout": done.stdout,
        "load": load,
    }


def in_flight(timeline: list[list[Any]]) -> float:
    """Seconds during which at least one request was in flight (concurrent ones count once)."""
    busy, open_requests, since = 0.0, 0, 0.0
    for moment, kind, *_ in sorted(timeline, key=lambda event: event[0]):
        if kind == "send":
            if open_requests == 0:
                since = moment
            open_requests += 1
        elif open_requests > 0:
            open_requests -= 1
            if open_requests == 0:
                busy += moment - since
    return busy


def writes_span(timeline: list[list[Any]]) -> float:
    """Seconds from the first request that writes (`_WRITES`) leaving to the last one's answer
    arriving: the part of a run spent writing, once everything before it was decided."""
    moments = [event[0] for event in timeline if event[2] in _WRITES]
    return max(moments) - min(moments) if moments else 0.0


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    operations: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, entry in part["operations"].items():
            into = operations.setdefault(
                name, {"requests": 0, "bytes_up": 0, "bytes_down": 0, "statuses": {}, "areas": {}}
            )
            for field in ("requests", "bytes_up", "bytes_down"):
                into[field] += entry[field]
            for group in ("statuses", "areas"):
                for key, count in entry[group].items():
                    into[group][key] = into[group].get(key, 0) + count
    return {
        "wall_s": sum(p["wall_s"] for p in parts),
        "aws_s": sum(p["aws_s"] for p in parts),
        "span_s": sum(p["span_s"] for p in parts),
        "writes_s": sum(p["writes_s"] for p in parts),
        "operations": dict(sorted(operations.items())),
        "load": max(p["load"] for p in parts),
    }


def run_mwaa_elt(project: Path, env: dict[str, str], record: Path) -> dict[str, Any]:
    """`mwaa-elt promote --to dev --yes --skip-mwaa-checks --json`, hooked."""
    args = ["promote", "--to", STAGE, "--yes", "--skip-mwaa-checks", "--json"]
    result = hooked(Path(sys.executable), "mwaa-elt", args, project, env, record)
    report = json.loads(result.pop("stdout"))
    result["reported"] = {k: report.get(k) for k in ("uploaded", "deleted", "unchanged")}
    return result


def run_sync(
    tool: Tool, folder: Path, bucket: str, endpoint: str, env: dict[str, str], record: Path
) -> dict[str, Any]:
    """`aws s3 sync` of dags/ then scripts/, as the MWAA CI/CD guides do, hooked."""
    python = AWSCLI_VENV / "bin" / "python"
    parts = []
    for prefix in ("dags", "scripts"):
        args = ["s3", "sync", str(folder / prefix), f"s3://{bucket}/{prefix}/", "--delete"]
        args += [*tool.sync_flags, "--no-progress", "--endpoint-url", endpoint]
        part = hooked(python, "aws", args, folder, env, record)
        part.pop("stdout")
        parts.append(part)
    return _combine(parts)


def place(folder: Path, files: Mapping[str, bytes], *, fresh: bool) -> None:
    """Make `folder` hold `files`: anew (every file new), or rewriting only what differs."""
    if fresh and folder.exists():
        shutil.rmtree(folder)
    current = tree(folder) if folder.exists() else {}
    for relative, data in files.items():
        if current.get(relative) != data:
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for relative in current.keys() - files.keys():
        (folder / relative).unlink()
    for sub in ("dags", "scripts"):
        (folder / sub).mkdir(parents=True, exist_ok=True)


def run_sequence(
    tool: Tool,
    *,
    project: Path,
    edit: Edit,
    states: Mapping[str, Mapping[str, bytes]],
    endpoint: str,
    stages: Mapping[str, Any],
    scratch: Path,
    base_env: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Every scenario in order for one tool, from an emptied emulator: each scenario's runs."""
    stage = stages[STAGE]
    env = _environment(base_env, endpoint, stage.region)
    reset(endpoint, stages)
    folder = scratch / "sync" / tool.name.replace(" ", "_")
    if folder.exists():
        shutil.rmtree(folder)
    record = scratch / "record.json"
    results: dict[str, list[dict[str, Any]]] = {}
    for scenario in sequence_order():
        state = STATE_OF[scenario]
        if scenario == FIRST:
            reset(endpoint, stages)
        if tool.is_sync:
            place(folder, states[state], fresh=tool.fresh_folder)
            # LastModified has whole seconds: waiting makes every object newer than its file,
            # so sync's time test never re-uploads an unchanged file for want of a fraction.
            time.sleep(1.1)
            result = run_sync(tool, folder, stage.source_bucket, endpoint, env, record)
        else:
            edit.apply(state)
            litter = project / "scratch-build"
            if scenario == UNTRACKED:
                untracked(litter, UNTRACKED_FILES)
            try:
                with no_local_records(project, scratch, hide=scenario == FIRST_COLD):
                    result = run_mwaa_elt(project, env, record)
            finally:
                shutil.rmtree(litter, ignore_errors=True)
        result["correct"] = matches(endpoint, stage, states[state])
        results.setdefault(scenario, []).append(result)
    edit.apply("base")
    return results


def sequence_order() -> list[str]:
    """The scenarios of one sequence in the order they run: the steady pair `STEADY_RUNS` times."""
    steady = [NO_CHANGE, UNTRACKED] * STEADY_RUNS
    return [FIRST_COLD, FIRST, *steady, ONE_CHANGE, SAME_SIZE]


@contextmanager
def no_local_records(project: Path, scratch: Path, *, hide: bool) -> Iterator[None]:
    """With `hide`, the project's local records (render's, the folder hashes': build/.cache)
    are moved aside while the block runs, as in a fresh clone, and put back after it."""
    cache, aside = project / "build" / ".cache", scratch / "cache-aside"
    if not hide or not cache.exists():
        yield
        return
    shutil.rmtree(aside, ignore_errors=True)
    cache.rename(aside)
    try:
        yield
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        aside.rename(cache)


def untracked(folder: Path, count: int) -> None:
    """`count` small files git does not ignore, in folders of 100, like a build folder."""
    for index in range(count):
        path = folder / f"part{index // 100:03d}" / f"out_{index:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# build output {index}\n")


# -- summaries --------------------------------------------------------------------------------


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
    }


def _median(values: list[int]) -> int:
    return int(statistics.median(values))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and ranges of one tool in one scenario over the repetitions."""
    names = sorted({name for run in runs for name in run["operations"]})

    def count(run: dict[str, Any], name: str, field: str) -> int:
        return int(run["operations"].get(name, {}).get(field, 0))

    totals = [sum(count(run, n, "requests") for n in names) for run in runs]
    areas: dict[str, int] = {}
    for name in names:
        keys = sorted({a for run in runs for a in run["operations"].get(name, {}).get("areas", {})})
        for area in keys:
            areas[f"{name} {area}"] = _median(
                [run["operations"].get(name, {}).get("areas", {}).get(area, 0) for run in runs]
            )
    return {
        "load_average": round(statistics.median(run["load"] for run in runs), 2),
        "wall": _stats([run["wall_s"] for run in runs]),
        "aws": _stats([run["aws_s"] for run in runs]),
        "rest": _stats([run["wall_s"] - run["aws_s"] for run in runs]),
        "first_to_last_request": _stats([run["span_s"] for run in runs]),
        "writing": _stats([run["writes_s"] for run in runs]),
        "requests": _median(totals),
        "requests_min": min(totals),
        "requests_max": max(totals),
        "by_operation": {n: _median([count(run, n, "requests") for run in runs]) for n in names},
        "by_area": areas,
        "bytes_up": _median([sum(count(run, n, "bytes_up") for n in names) for run in runs]),
        "bytes_down": _median([sum(count(run, n, "bytes_down") for n in names) for run in runs]),
        "correct_runs": sum(run["correct"]["ok"] for run in runs),
        "runs": len(runs),
        "incorrect_example": next(
            (run["correct"] for run in runs if not run["correct"]["ok"]), None
        ),
        "reported": runs[0].get("reported"),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


_WRITES = ("s3.PutObject", "s3.DeleteObject", "s3.DeleteObjects", "s3.CopyObject")


def targets(
    table: Mapping[str, Mapping[str, dict[str, Any]]], tools: tuple[Tool, ...] = TOOLS
) -> dict[str, Any]:
    """The issue's three targets, checked against the medians."""
    ours = {scenario: table[scenario][MWAA_ELT.name] for scenario in SCENARIOS}
    quiet = ours[NO_CHANGE]["by_operation"]
    s3 = sum(n for op, n in quiet.items() if op.startswith("s3."))
    sts = sum(n for op, n in quiet.items() if op.startswith("sts."))
    writes = {
        key: n
        for key, n in ours[ONE_CHANGE]["by_area"].items()
        if key.split(" ", 1)[0] in _WRITES and n
    }
    dag_puts = writes.get("s3.PutObject dags", 0)
    manifest_puts = writes.get("s3.PutObject .mwaa-elt/manifest.json", 0)
    extra = {
        k: n
        for k, n in writes.items()
        if k not in ("s3.PutObject dags", "s3.PutObject .mwaa-elt/manifest.json")
    }
    faster = {}
    for scenario in SCENARIOS:
        for tool in tools[1:]:
            theirs = table[scenario][tool.name]
            faster[f"{scenario} vs {tool.name}"] = {
                "wall": ours[scenario]["wall"]["median_s"] < theirs["wall"]["median_s"],
                "aws": ours[scenario]["aws"]["median_s"] < theirs["aws"]["median_s"],
                "their_result_correct": theirs["correct_runs"] == theirs["runs"],
            }
    return {
        "no_change_requests": {
            "total": ours[NO_CHANGE]["requests"],
            "s3": s3,
            "sts": sts,
            "target": TARGET_NO_CHANGE_REQUESTS,
            "met": ours[NO_CHANGE]["requests"] <= TARGET_NO_CHANGE_REQUESTS,
        },
        "one_change_writes": {
            "writes": writes,
            "dag_puts": dag_puts,
            "manifest_puts": manifest_puts,
            "other_writes": extra,
            "met": dag_puts == 1 and manifest_puts == 1 and not extra,
            "met_for_dags_and_manifest": dag_puts == 1 and manifest_puts == 1,
        },
        "faster_than_sync": {
            "by_scenario": faster,
            "met_wall": all(v["wall"] for v in faster.values()),
            "met_aws": all(v["aws"] for v in faster.values()),
        },
    }


def _awscli_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, awscli, botocore, s3transfer; print(json.dumps({'awscli': "
        "awscli.__version__, 'botocore (vendored in awscli)': botocore.__version__, "
        "'s3transfer (vendored in awscli)': s3transfer.__version__}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def _check_awscli() -> Path:
    python = AWSCLI_VENV / "bin" / "python"
    if not (AWSCLI_VENV / ".installed").exists() or not python.exists():
        raise BenchError(
            f"{AWSCLI_VENV} is missing: run `make bench-envs` "
            "(it installs requirements/bench-awscli.txt)"
        )
    return python


def measure(
    size: Size, tools: tuple[Tool, ...]
) -> tuple[
    dict[str, dict[str, Any]], Edit, dict[str, dict[str, int]], dict[str, Any], dict[str, Any]
]:
    """Every tool of `tools` in every scenario on a project of `size`: the table of summaries,
    the edit, the rendered files' counts, the source measured and the CPU a first promotion
    spends before its first write (`first_promotion_cpu`)."""
    from mwaa_elt.stage import load_all_stages

    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        s: {t.name: [] for t in tools} for s in SCENARIOS
    }
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bench-promotion-") as tmp:
        scratch = Path(tmp)
        project = scratch / "project"
        edit = build_project(project, size.pipelines)
        source = source_state()
        base_env = frozen_package(scratch)
        states = render_states(project, edit, scratch / "rendered", base_env)
        before_writes = first_promotion_cpu(project, base_env)
        stages = load_all_stages(project / "stacks")
        with running_sandbox(project, scratch, base_env) as endpoint:
            plan_once(project, _environment(base_env, endpoint, stages[STAGE].region))
            for repetition in range(size.repetitions):
                shift = repetition % len(tools)
                for tool in tools[shift:] + tools[:shift]:
                    sequence = run_sequence(
                        tool,
                        project=project,
                        edit=edit,
                        states=states,
                        endpoint=endpoint,
                        stages=stages,
                        scratch=scratch,
                        base_env=base_env,
                    )
                    for scenario, results in sequence.items():
                        raw[scenario][tool.name].extend(results)
        files = {
            state: {
                "dags": sum(k.startswith("dags/") for k in files),
                "scripts": sum(k.startswith("scripts/") for k in files),
                "bytes": sum(len(v) for v in files.values()),
            }
            for state, files in states.items()
        }
    table = {s: {t: summarize(runs) for t, runs in by_tool.items()} for s, by_tool in raw.items()}
    return table, edit, files, source, before_writes


def first_promotion_cpu(project: Path, env: dict[str, str]) -> dict[str, Any]:
    """`bench.first_promotion_cpu` on `project` (its base state), untimed, nothing else running:
    the CPU seconds of validation and rendering, and of the DagBag gate, and the cores that
    share them."""
    done = subprocess.run(
        [sys.executable, str(FIRST_CPU), str(project), STAGE],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchError(f"measuring a first promotion's CPU failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def requested_sizes(default: int) -> list[int]:
    """The project sizes to measure: `default`, plus those BENCH_PROMOTION_SIZES names."""
    extra = [int(n) for n in os.environ.get(SIZES_VARIABLE, "").replace(",", " ").split()]
    return sorted({default, *extra})


def run(
    quick: bool = False,
    sizes: list[int] | None = None,
    *,
    pair_only: bool = False,
    repetitions: int | None = None,
) -> dict[str, Any]:
    """Measure every tool in every scenario, and mwaa-elt against sync at further sizes; the
    summary the report is written from. `pair_only` measures mwaa-elt and `aws s3 sync` alone
    (the pair the targets name) at the full size too."""
    size = QUICK if quick else FULL
    if repetitions:
        size = Size(size.pipelines, repetitions)
    tools = (MWAA_ELT, SYNC) if pair_only else TOOLS
    awscli_python = _check_awscli()
    load = os.getloadavg()
    started = time.monotonic()
    table, edit, files, source, before_writes = measure(size, tools)
    ratios = {
        scenario: {
            tool.name: {
                "wall": _ratio(
                    table[scenario][MWAA_ELT.name]["wall"]["median_s"],
                    table[scenario][tool.name]["wall"]["median_s"],
                ),
                "aws": _ratio(
                    table[scenario][MWAA_ELT.name]["aws"]["median_s"],
                    table[scenario][tool.name]["aws"]["median_s"],
                ),
            }
            for tool in tools[1:]
        }
        for scenario in SCENARIOS
    }
    floors = {size.pipelines: floor_row(table, before_writes)}
    for pipelines in sizes or requested_sizes(size.pipelines):
        if pipelines != size.pipelines:
            larger = Size(pipelines, 1 if quick else repetitions or LARGE_REPETITIONS)
            larger_table, *_, larger_before_writes = measure(larger, (MWAA_ELT, SYNC))
            floors[pipelines] = floor_row(larger_table, larger_before_writes)
    return {
        "quick": quick,
        "pipelines": size.pipelines,
        "repetitions": size.repetitions,
        "edited_pipeline": edit.pipeline,
        "source": source,
        "rendered": files["base"],
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "duration_s": round(time.monotonic() - started, 1),
        "python": platform.python_version(),
        "versions": {
            **{name: version(name) for name in ("mwaa-elt", "boto3", "botocore", "moto")},
            **_awscli_versions(awscli_python),
        },
        "tools": [tool.name for tool in tools],
        "scenarios": table,
        "ratios": ratios,
        "targets": targets(table, tools),
        "floor": floor_targets(floors),
    }


# -- the table: promotion at the floor -------------------------------------------------

# Scenario: (the most mwaa-elt may take, as a multiple of sync in the same run; what it is).
FLOOR_TARGETS = {
    FIRST: (1.5, "first promotion \u2264 1.5\u00d7 sync (both after the same render)"),
    FIRST_COLD: (1.5, "first promotion \u2264 1.5\u00d7 sync, from a fresh clone"),
    NO_CHANGE: (0.5, "no change \u2264 0.5\u00d7 sync and \u2264 1 s at 1,000"),
    ONE_CHANGE: (2.0, "one SQL file changed, gates for that DAG included, \u2264 2\u00d7 sync"),
    UNTRACKED: (None, "no change with untracked files within 10% of a clean tree"),
}
NO_CHANGE_SECONDS = 1.0
UNTRACKED_SLACK = 1.10
FLAT = 1.25  # per-pipeline cost from the smallest to the largest size: at most this ratio


def floor_row(
    table: Mapping[str, Mapping[str, Any]], before_writes: Mapping[str, Any]
) -> dict[str, Any]:
    """mwaa-elt and `aws s3 sync` medians per scenario, with the load average they ran under;
    for the fresh-clone first promotion, also the least time its design allows on this machine
    (`fresh_clone_floor`)."""
    row = {}
    for scenario in FLOOR_TARGETS:
        ours, theirs = table[scenario][MWAA_ELT.name], table[scenario][SYNC.name]
        row[scenario] = {
            "mwaa_elt_s": ours["wall"]["median_s"],
            "sync_s": theirs["wall"]["median_s"],
            "ratio": _ratio(ours["wall"]["median_s"], theirs["wall"]["median_s"]),
            "load_average": max(ours["load_average"], theirs["load_average"]),
            "runs": ours["runs"],
            "correct": ours["correct_runs"] == ours["runs"],
        }
    row[FIRST_COLD]["floor"] = fresh_clone_floor(
        before_writes,
        writes_s=table[FIRST_COLD][MWAA_ELT.name]["writing"]["median_s"],
        sync_s=row[FIRST_COLD]["sync_s"],
    )
    return row


def fresh_clone_floor(
    before_writes: Mapping[str, Any], *, writes_s: float, sync_s: float
) -> dict[str, Any]:
    """The least a first promotion from a fresh clone can take here: validation, rendering and
    the DagBag gate (CPU seconds measured one process each, `first_promotion_cpu`) spread
    perfectly over the cores, since nothing may be written before they pass; then its writes,
    as long as they took in the runs measured. As a multiple of sync's median in those runs."""
    cpu = before_writes["validate_render_cpu_s"] + before_writes["dagbag_gate_cpu_s"]
    before = cpu / before_writes["cores"]
    return {
        **before_writes,
        "before_writes_s": round(before, 3),
        "writes_s": writes_s,
        "floor_s": round(before + writes_s, 3),
        "ratio": _ratio(before + writes_s, sync_s),
    }


def floor_targets(floors: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The issue's targets per size, and the cost per pipeline from the smallest size up."""
    sizes = sorted(floors)
    verdicts: dict[str, dict[str, Any]] = {}
    for pipelines in sizes:
        row = floors[pipelines]
        clean = row[NO_CHANGE]["mwaa_elt_s"]
        checks = {}
        for scenario, (limit, _) in FLOOR_TARGETS.items():
            cell = row[scenario]
            if scenario == UNTRACKED:
                slowdown = _ratio(cell["mwaa_elt_s"], clean)
                checks[scenario] = {"vs_clean": slowdown, "met": (slowdown or 0) <= UNTRACKED_SLACK}
                continue
            met = cell["ratio"] is not None and cell["ratio"] <= limit
            if scenario == NO_CHANGE and pipelines <= 1000:
                met = met and cell["mwaa_elt_s"] <= NO_CHANGE_SECONDS
            checks[scenario] = {"met": met}
        verdicts[str(pipelines)] = checks
    per_pipeline = {}
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for scenario in FLOOR_TARGETS:
            a = floors[small][scenario]["mwaa_elt_s"] / small
            b = floors[large][scenario]["mwaa_elt_s"] / large
            per_pipeline[scenario] = {
                "ratio": round(b / a, 3) if a else None,
                "flat": bool(a) and b / a <= FLAT,
            }
    return {
        "sizes": {str(n): dict(floors[n]) for n in sizes},
        "targets": verdicts,
        "per_pipeline": per_pipeline,
    }


def floor_markdown(floor: Mapping[str, Any]) -> list[str]:
    """The issue's table: mwaa-elt against `aws s3 sync` per size, the targets and the ratio."""
    sizes = list(floor["sizes"])
    lines = [
        "### Promotion at the floor",
        "",
        "Medians of the paired runs above (and, for further sizes, of mwaa-elt paired with "
        "`aws s3 sync` alone in the same run); the load average (1 min) is the highest seen "
        "at the end of any of those runs, on this machine's shared cores.",
        "",
        "| scenario | "
        + " | ".join(f"{int(n):,} pipelines: mwaa-elt / sync (load)" for n in sizes)
        + " | target |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]
    for scenario, (_, text) in FLOOR_TARGETS.items():
        cells = []
        for n in sizes:
            cell = floor["sizes"][n][scenario]
            verdict = floor["targets"][n][scenario]
            if scenario == UNTRACKED:
                ratio = f"{_ratio_text(verdict['vs_clean'])} of clean"
            else:
                ratio = _ratio_text(cell["ratio"])
            mark = "met" if verdict["met"] else "**not met**"
            cells.append(
                f"{cell['mwaa_elt_s']:.2f} s / {cell['sync_s']:.2f} s = {ratio}, {mark} "
                f"({cell['load_average']:.1f})"
            )
        lines.append(f"| {scenario} | " + " | ".join(cells) + f" | {text} |")
    lines += ["", *fresh_clone_floor_markdown(floor)]
    if floor["per_pipeline"]:
        small, large = sizes[0], sizes[-1]
        parts = [
            f"{scenario} {_ratio_text(v['ratio'])}" + ("" if v["flat"] else " (**not flat**)")
            for scenario, v in floor["per_pipeline"].items()
        ]
        lines += [
            "",
            f"mwaa-elt's cost per pipeline at {int(large):,} \u00f7 at {int(small):,} (flat = "
            f"\u2264 {FLAT}\u00d7): " + "; ".join(parts) + ".",
        ]
    return lines


def fresh_clone_floor_markdown(floor: Mapping[str, Any]) -> list[str]:
    """Per size, the least time a fresh-clone first promotion can take here, and why."""
    lines = [
        "A first promotion from a fresh clone validates, renders and loads every DAG in the "
        "stage's Airflow before it may write (the plan is gated, then applied). The least time "
        "that allows on this machine, with that work (CPU seconds, one process each) spread "
        "perfectly over the cores and the writes as long as they took:",
        "",
    ]
    for n, row in floor["sizes"].items():
        bound = row[FIRST_COLD]["floor"]
        lines.append(
            f"- {int(n):,} pipelines: validation and rendering "
            f"{bound['validate_render_cpu_s']:.1f} CPU-s + the DagBag gate "
            f"{bound['dagbag_gate_cpu_s']:.1f} CPU-s on {bound['cores']} cores = "
            f"{bound['before_writes_s']:.2f} s, then the writes {bound['writes_s']:.2f} s: "
            f"{bound['floor_s']:.2f} s = {_ratio_text(bound['ratio'])} sync "
            f"({row[FIRST_COLD]['sync_s']:.2f} s)."
        )
    return lines


# -- report -----------------------------------------------------------------------------------


def _s(stats: Mapping[str, float]) -> str:
    return f"{stats['median_s']:.2f} s ({stats['min_s']:.2f}{DASH}{stats['max_s']:.2f})"


def _bytes(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _operations(by_operation: Mapping[str, int]) -> str:
    parts = [f"{op.split('.', 1)[1]} {n}" for op, n in by_operation.items() if n]
    return ", ".join(parts) or "none"


def _ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{TIMES}" if value >= 0.1 else f"{value:.3f}{TIMES}"


def _slower(fast: Mapping[str, Any], field: str) -> str:
    """`tool (scenario, scenario)` for every comparison mwaa-elt did not win on `field`."""
    lost: dict[str, list[str]] = {}
    for key, verdict in fast["by_scenario"].items():
        if not verdict[field]:
            scenario, tool = key.split(" vs ", 1)
            lost.setdefault(tool, []).append(scenario)
    return "; ".join(f"{tool} ({', '.join(scenarios)})" for tool, scenarios in lost.items())


def markdown(result: dict[str, Any]) -> list[str]:
    """The promotion section of bench/results.md."""
    v = result["versions"]
    rendered = result["rendered"]
    lines = [
        "## Promotion against `aws s3 sync`",
        "",
        f"{result['pipelines']} pipelines rendered for dev ({rendered['dags']} DAG files, "
        f"{rendered['scripts']} EMR scripts, {_bytes(rendered['bytes'])}) pushed into the dev "
        "bucket of the sandbox (moto's server on loopback); "
        f"{result['repetitions']} sequence(s) per tool, every run a fresh process, each sequence "
        f"from an emptied emulator, its no-change and untracked-files runs {STEADY_RUNS} times "
        f"each, alternately; {result['cores']} cores, load average "
        f"{result['load_average_before'][0]} before and {result['load_average_after'][0]} after; "
        f"Python {result['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()) + "; "
        f"mwaa-elt measured at commit {result['source']['commit']}"
        + (" with uncommitted changes" if result["source"]["uncommitted_changes"] else "")
        + " (a copy frozen for the whole run).",
        "",
        "Scenarios: " + "; ".join(f"*{s}*: {SCENARIO_TEXT[s]}" for s in SCENARIOS) + ". "
        f"The edited pipeline is {result['edited_pipeline']}. mwaa-elt runs `mwaa-elt promote "
        "--to dev --yes --skip-mwaa-checks --json` on the working tree; sync pushes the folder "
        "`mwaa-elt render` wrote (outside its timing) with `aws s3 sync DIR/dags "
        "s3://BUCKET/dags/ --delete` and the same for scripts/ — kept between runs with only "
        "changed files rewritten (`aws s3 sync`, `--size-only`), or rendered anew before every "
        "run as in CI on a fresh checkout.",
        "",
        "Requests are counted per HTTP attempt by a botocore event hook inside the measured "
        "process. *Wall* is the whole process (for sync, its dags/ and scripts/ runs added "
        "up); *AWS* is the time with at least one request in flight; *rest* is everything else: "
        "start-up and, for mwaa-elt, validate, render, bundle, plan and — when something "
        "changes — the requirements and DagBag gates, which sync does not do. *Correct*: dags/ "
        "and scripts/ hold exactly the rendered files afterwards.",
        "",
        "| scenario | tool | wall median (min\u2013max) | AWS | rest | requests | bytes up / down "
        "| correct | mwaa-elt \u00f7 tool: wall, AWS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    measured = [tool for tool in TOOLS if tool.name in result["scenarios"][FIRST]]
    for scenario in SCENARIOS:
        for tool in measured:
            row = result["scenarios"][scenario][tool.name]
            spread = (
                ""
                if row["requests_min"] == row["requests_max"]
                else f" ({row['requests_min']}{DASH}{row['requests_max']})"
            )
            ratio = result["ratios"][scenario].get(tool.name)
            ratio_text = (
                ""
                if ratio is None
                else f"{_ratio_text(ratio['wall'])}, {_ratio_text(ratio['aws'])}"
            )
            correct = (
                "yes"
                if row["correct_runs"] == row["runs"]
                else f"**no** ({row['runs'] - row['correct_runs']}/{row['runs']} runs stale)"
            )
            lines.append(
                f"| {scenario} | {tool.name} | {_s(row['wall'])} "
                f"| {row['aws']['median_s']:.2f} s | {row['rest']['median_s']:.2f} s "
                f"| {row['requests']}{spread}: {_operations(row['by_operation'])} "
                f"| {_bytes(row['bytes_up'])} / {_bytes(row['bytes_down'])} | {correct} "
                f"| {ratio_text} |"
            )
    lines += [
        "",
        "mwaa-elt's requests by key (medians):",
        "",
        "| scenario | requests by operation and key |",
        "|---|---|",
    ]
    for scenario in SCENARIOS:
        areas = result["scenarios"][scenario][MWAA_ELT.name]["by_area"]
        text = ", ".join(f"{k.split('.', 1)[1]} {n}" for k, n in areas.items() if n)
        lines.append(f"| {scenario} | {text} |")
    t = result["targets"]
    quiet = t["no_change_requests"]
    one = t["one_change_writes"]
    fast = t["faster_than_sync"]
    writes = ", ".join(f"{k.split('.', 1)[1]} {n}" for k, n in one["writes"].items())
    lines += [
        "",
        "Targets:",
        "",
        f"- no-change promotion \u2264 {quiet['target']} requests: "
        f"**{'met' if quiet['met'] else 'not met'}** \u2014 {quiet['total']} "
        f"({quiet['s3']} S3, {quiet['sts']} STS).",
        "- one change = 1 DAG upload + manifest: "
        f"**{'met' if one['met'] else 'not met as stated'}** \u2014 the writes are {writes}"
        + (
            "; beyond the DAG and the manifest, mwaa-elt writes the changed pipeline's "
            "content-addressed source bundle and takes (PUT) and releases (DELETE) the stage lock."
            if one["met_for_dags_and_manifest"] and not one["met"]
            else "."
        ),
        "- faster than `aws s3 sync` in every scenario: wall time "
        f"**{'met' if fast['met_wall'] else 'not met'}**"
        + (f" (slower than {_slower(fast, 'wall')})" if not fast["met_wall"] else "")
        + f"; AWS time **{'met' if fast['met_aws'] else 'not met'}**"
        + (f" (slower than {_slower(fast, 'aws')})" if not fast["met_aws"] else "")
        + ".",
    ]
    stale = [
        f"{tool.name} after the {scenario}"
        for scenario in SCENARIOS
        for tool in measured
        if result["scenarios"][scenario][tool.name]["correct_runs"]
        < result["scenarios"][scenario][tool.name]["runs"]
    ]
    if stale:
        lines += [
            "",
            "Left a stale bucket (a correctness failure, not a speed-up): "
            + "; ".join(stale)
            + ".",
        ]
    if "floor" in result:
        lines += ["", *floor_markdown(result["floor"])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.promotion", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="12 pipelines, one sequence")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument(
        "--sizes",
        help=f"project sizes, e.g. 1000,5000 (default: the full size; also ${SIZES_VARIABLE})",
    )
    parser.add_argument(
        "--pair-only",
        action="store_true",
        help="measure mwaa-elt and `aws s3 sync` only (not the --size-only and fresh variants)",
    )
    parser.add_argument("--repetitions", type=int, help="sequences per tool and size")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else None
    try:
        result = run(
            quick=args.quick,
            sizes=sizes,
            pair_only=args.pair_only,
            repetitions=args.repetitions,
        )
    except BenchError as error:
        print(f"bench.promotion: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
