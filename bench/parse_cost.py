"""What the scheduler pays to parse mwaa-elt's DAGs, against dag-factory and hand-written DAGs.

The same N pipelines (six-task Athena ones and EMR ones, each with its own names and SQL) are
expressed three ways: rendered by `mwaa-elt render --stage dev`; as dag-factory YAML with one
loader file per YAML (dag-factory's documented pattern); and as plain hand-written DAG files. All
three are parsed by the dev stage's Airflow in one venv (.venv-bench-dagfactory: the 3.0.6 MWAA pins
plus dag-factory), in fresh processes, several times, after proving they build the same DAGs.

Run alone: .venv/bin/python -m bench.parse_cost [--quick]  (prints markdown, writes the JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.dag_variants import dag_factory_yaml, handwritten, specs
from bench.dag_variants.recipe import Recipe, RecipeError

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench-dagfactory"
PROBE = Path(__file__).resolve().parent / "dag_variants" / "probe.py"
JSON_OUT = Path(__file__).resolve().parent / "parse_cost.json"
STAGE = "dev"
MWAA_ELT, HAND_WRITTEN, DAG_FACTORY = "mwaa-elt", "hand-written", "dag-factory"
VARIANTS = (MWAA_ELT, HAND_WRITTEN, DAG_FACTORY)
TARGET_VS_HAND_WRITTEN = 1.1
TARGET_VS_DAG_FACTORY = 0.6
# The dev stage's MWAA environment, and the packages whose versions must equal its lock.
LOCK = ROOT / "requirements" / "mwaa" / "3.0.6" / "environment.lock"
PINNED = (
    "apache-airflow",
    "apache-airflow-core",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-amazon",
    "apache-airflow-providers-smtp",
    "apache-airflow-providers-standard",
    "apache-airflow-providers-common-sql",
    "pendulum",
    "PyYAML",
)
# What dag-factory 1.1 does differently by design; anything else that differs stops the bench.
DAG_FACTORY_DIFFERENCES = {
    "doc_md": "dag-factory appends the DAG's YAML to doc_md",
    "tags": "dag-factory adds the tag 'dagfactory'",
    "teardown": (
        "dag-factory 1.1 cannot declare setup/teardown: terminate_cluster runs with "
        "trigger_rule all_done instead of as_teardown(setups=create_cluster)"
    ),
}
TEARDOWN_KEYS = ("is_setup", "is_teardown", "trigger_rule")
TIMES, DASH = "\u00d7", "\u2013"  # the report's multiplication sign and en dash


@dataclass(frozen=True)
class Size:
    """How much to measure: pipelines per kind, fresh-process repetitions, DAG-processor sample."""

    athena: int
    emr: int
    repetitions: int
    processor_every: int  # the DAG-processor mode forks for every k-th pipeline of each kind


FULL = Size(athena=200, emr=50, repetitions=5, processor_every=5)
QUICK = Size(athena=2, emr=1, repetitions=1, processor_every=1)


class BenchError(Exception):
    """The benchmark cannot produce a fair result; the message says why and what to do."""


# --- running things -------------------------------------------------------------------------------


def _bench_python() -> Path:
    python = BENCH_VENV / "bin" / "python"
    if not (BENCH_VENV / ".installed").exists() or not python.exists():
        raise BenchError(f"{BENCH_VENV.name} is not built: run `make bench-envs` (or `make bench`)")
    return python


def _probe(args: list[str], python: Path | None = None) -> dict[str, Any]:
    """Run the probe in a fresh process of the bench venv (or `python`) and return its JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    # The scheduler keeps compiled DAG files in __pycache__ between parses; so does the bench.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [str(python or _bench_python()), str(PROBE), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"probe {' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _render(project: Path, out: Path) -> None:
    cli = Path(sys.executable).with_name("mwaa-elt")
    done = subprocess.run(
        [str(cli), "render", "--stage", STAGE, "--out", str(out), "--project-dir", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"mwaa-elt render failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _fill_order(step: int) -> list[str]:
    """The variants' order in a repetition: none always first, mwaa-elt next to hand-written."""
    pair = [MWAA_ELT, HAND_WRITTEN] if step % 4 in (0, 3) else [HAND_WRITTEN, MWAA_ELT]
    return [*pair, DAG_FACTORY] if step % 2 == 0 else [DAG_FACTORY, *pair]


# --- proving the three variants build the same DAGs -----------------------------------------------


def _differences(expected: dict[str, Any], got: dict[str, Any], where: str) -> list[str]:
    found = []
    for key in sorted(set(expected) | set(got)):
        if expected.get(key) != got.get(key):
            found.append(f"{where}.{key}: {expected.get(key)!r:.160} != {got.get(key)!r:.160}")
    return found


def compare(reference: dict[str, Any], other: dict[str, Any], dag_factory: bool) -> list[str]:
    """What differs between two descriptions of the same DAGs, less dag-factory's known ways."""
    problems = []
    for dag_id in sorted(set(reference) | set(other)):
        if dag_id not in reference or dag_id not in other:
            problems.append(f"{dag_id}: built by only one of the two variants")
            continue
        ref, got = dict(reference[dag_id]), dict(other[dag_id])
        ref_tasks, got_tasks = ref.pop("tasks"), got.pop("tasks")
        if dag_factory:
            if not str(got["doc_md"]).startswith(str(ref["doc_md"])):
                problems.append(f"{dag_id}.doc_md: does not start with mwaa-elt's doc_md")
            got["doc_md"] = ref["doc_md"]
            got["tags"] = [t for t in got["tags"] if t != "dagfactory"]
        problems += _differences(ref, got, dag_id)
        for task_id in sorted(set(ref_tasks) | set(got_tasks)):
            if task_id not in ref_tasks or task_id not in got_tasks:
                problems.append(f"{dag_id}.{task_id}: built by only one of the two variants")
                continue
            ref_task, got_task = dict(ref_tasks[task_id]), dict(got_tasks[task_id])
            if dag_factory and (ref_task["is_setup"] or ref_task["is_teardown"]):
                for key in TEARDOWN_KEYS:
                    del ref_task[key]
                    del got_task[key]
            problems += _differences(ref_task, got_task, f"{dag_id}.{task_id}")
    return problems


# --- statistics -----------------------------------------------------------------------------------


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
    }


def _paired(per_dag: dict[str, dict[str, Any]], a: str, b: str) -> float:
    """The median over repetitions of a/b: each repetition measured both under the same load."""
    pairs = zip(per_dag[a]["samples_s"], per_dag[b]["samples_s"], strict=True)
    return statistics.median(x / y for x, y in pairs)


def _ratios(per_dag: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ratios: dict[str, Any] = {
        f"{a} / {b}": _paired(per_dag, a, b)
        for a in VARIANTS
        for b in (HAND_WRITTEN, DAG_FACTORY)
        if a != b
    }
    ratios["target_vs_hand_written_met"] = (
        ratios["mwaa-elt / hand-written"] <= TARGET_VS_HAND_WRITTEN
    )
    ratios["target_vs_dag_factory_met"] = ratios["mwaa-elt / dag-factory"] <= TARGET_VS_DAG_FACTORY
    return ratios


def _fill_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    variants = {}
    for variant in VARIANTS:
        reports = runs[variant]
        variants[variant] = {
            "per_dag": _stats(
                [sum(f["seconds"] for f in r["files"]) / len(r["files"]) for r in reports]
            ),
            "per_dag_cpu": _stats(
                [sum(f["cpu_seconds"] for f in r["files"]) / len(r["files"]) for r in reports]
            ),
            "dagbag_stats_per_file": _stats(
                [f["stat_seconds"] for r in reports for f in r["files"]]
            ),
            "process_startup": _stats([r["startup_seconds"] for r in reports]),
            "dags": len(reports[0]["files"]),
            "tasks": sum(f["tasks"] for f in reports[0]["files"]),
        }
        del variants[variant]["dagbag_stats_per_file"]["samples_s"]
    return {
        "variants": variants,
        "ratios": _ratios({v: variants[v]["per_dag"] for v in VARIANTS}),
        "cpu_ratios": _ratios({v: variants[v]["per_dag_cpu"] for v in VARIANTS}),
    }


def _processor_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    variants = {}
    for variant in VARIANTS:
        reports = runs[variant]
        files = [f for r in reports for f in r["files"]]
        variants[variant] = {
            "per_dag": _stats(
                [statistics.mean(f["parse_seconds"] for f in r["files"]) for r in reports]
            ),
            "per_dag_cpu": _stats(
                [statistics.mean(f["parse_cpu_seconds"] for f in r["files"]) for r in reports]
            ),
            "dagbag_stats_per_file": _stats([f["stat_seconds"] for f in files]),
            "serialize_per_file": _stats([f["serialize_seconds"] for f in files]),
            "process_per_file": _stats([f["process_seconds"] for f in files]),
            "files_per_repetition": len(reports[0]["files"]),
            "providers_warm_up": _stats([r["providers_warm_up_seconds"] for r in reports]),
        }
        for key in ("dagbag_stats_per_file", "serialize_per_file", "process_per_file"):
            del variants[variant][key]["samples_s"]
    return {
        "variants": variants,
        "ratios": _ratios({v: variants[v]["per_dag"] for v in VARIANTS}),
        "cpu_ratios": _ratios({v: variants[v]["per_dag_cpu"] for v in VARIANTS}),
    }


def _pinned_versions() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _check_versions(found: dict[str, str | None], dev_airflow: str) -> None:
    if found.get("apache-airflow") != dev_airflow:
        raise BenchError(
            f"{BENCH_VENV.name} has Airflow {found.get('apache-airflow')}, the {STAGE} stage runs "
            f"{dev_airflow}: point LOCK at that version's lock and run `make bench-envs`"
        )
    pins = _pinned_versions()
    wrong = [
        f"{name} {found.get(name)} ({LOCK.name}: {pins.get(name.lower())})"
        for name in PINNED
        if found.get(name) != pins.get(name.lower())
    ]
    if wrong:
        raise BenchError(f"{BENCH_VENV.name} differs from the DagBag venv: {', '.join(wrong)}")


def _folder_bytes(folder: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(f"*{suffix}"))


# --- the benchmark --------------------------------------------------------------------------------


def render_mwaa_elt(scratch: Path, athena: int, emr: int) -> list[specs.BenchPipeline]:
    """Write the bench project into `scratch` and render it: the mwaa-elt variant's folder."""
    (scratch / "project").mkdir()
    pipelines = specs.write_project(scratch / "project", athena, emr)
    _render(scratch / "project", scratch / "render")
    folder = scratch / "variants" / MWAA_ELT
    folder.mkdir(parents=True)
    for path in sorted((scratch / "render" / "dags").glob("*.py")):
        shutil.copy(path, folder / path.name)
    return pipelines


def describe(folder: Path, pipelines: list[Any], python: Path | None = None) -> dict[str, Any]:
    """Fill a DagBag from `folder` with every DAG described; stop unless all of them loaded."""
    report = _probe(["describe", "--dags-folder", str(folder)], python)
    if report["import_errors"] or report["dag_count"] != len(pipelines):
        raise BenchError(
            f"{folder.name}: {report['dag_count']} of {len(pipelines)} DAGs loaded; "
            f"import errors: {json.dumps(report['import_errors'])[:3000]}"
        )
    return report


def recipes_of(pipelines: list[specs.BenchPipeline], reference: dict[str, Any]) -> list[Any]:
    """What the hand-written and dag-factory writers need, per pipeline, from mwaa-elt's DAGs."""
    try:
        return [(p.kind, Recipe(reference[p.name])) for p in pipelines]
    except KeyError as missing:
        raise BenchError(f"mwaa-elt rendered no DAG {missing}") from None


def _equal_or_stop(reference: dict[str, Any], described: dict[str, dict[str, Any]]) -> None:
    problems = {
        variant: compare(reference, report["dags"], dag_factory=variant == DAG_FACTORY)
        for variant, report in described.items()
        if variant != MWAA_ELT
    }
    if any(problems.values()):
        listed = [f"{v}: {p}" for v, found in problems.items() for p in found[:20]]
        raise BenchError("the variants do not build the same DAGs:\n" + "\n".join(listed))


def run(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the three variants of the same pipelines, prove them equal, and time their parsing.

    Raises BenchError when the variants cannot be built, loaded or shown to be equal.
    """
    try:
        return _run(QUICK if quick else FULL, quick, progress or (lambda _: None))
    except RecipeError as error:
        raise BenchError(str(error)) from None


def _run(size: Size, quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    from mwaa_elt.stage import load_stage

    load_before = os.getloadavg()[0]
    dev_airflow = load_stage(ROOT / "stacks", STAGE).airflow.version
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-parse-cost-") as scratch_dir:
        scratch = Path(scratch_dir)
        progress(f"rendering {size.athena + size.emr} pipelines with mwaa-elt")
        pipelines = render_mwaa_elt(scratch, size.athena, size.emr)
        folders = {v: scratch / "variants" / v for v in VARIANTS}

        # The first parse of each variant is untimed: it writes __pycache__ and describes the DAGs.
        progress("writing the hand-written and dag-factory variants, proving all three equal")
        described = {MWAA_ELT: describe(folders[MWAA_ELT], pipelines)}
        _check_versions(described[MWAA_ELT]["versions"], dev_airflow)
        reference = described[MWAA_ELT]["dags"]
        recipes = recipes_of(pipelines, reference)
        handwritten.write(recipes, folders[HAND_WRITTEN])
        dag_factory_yaml.write(recipes, folders[DAG_FACTORY])
        for variant in (HAND_WRITTEN, DAG_FACTORY):
            described[variant] = describe(folders[variant], pipelines)
        _equal_or_stop(reference, described)

        # One fresh process per repetition fills a DagBag per file, the variants alternating
        # file by file, after importing what the DAG files name (the same for every variant).
        names = [f"{p.name}.py" for p in pipelines]
        warm_up = [
            f"{next(p.name for p in pipelines if p.kind == k)}.py" for k in ("athena", "emr")
        ]
        fills: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for step in range(size.repetitions):
            progress(f"DagBag fill, repetition {step + 1} of {size.repetitions}")
            order = _fill_order(step)
            report = _probe(
                [
                    "fill",
                    *[arg for v in order for arg in ("--dags-folder", str(folders[v]))],
                    "--pre-import-from",
                    str(folders[MWAA_ELT]),
                    "--warm-up",
                    *warm_up,
                    "--files",
                    *names,
                ]
            )
            for variant in VARIANTS:
                files = report["variants"][folders[variant].name]
                failed = [f for f in files if f["import_errors"] or f["dags"] != 1]
                if failed:
                    raise BenchError(f"{variant}: DagBag fill failed: {failed[:3]}")
                fills[variant].append({**report, "files": files})

        sample = [
            f"{p.name}.py"
            for kind in ("athena", "emr")
            for i, p in enumerate(q for q in pipelines if q.kind == kind)
            if i % size.processor_every == 0
        ]
        # mwaa-elt and hand-written files import the same Airflow modules, so they can share a
        # parent and alternate file by file: the tight 1.1x comparison then sees the same load.
        # dag-factory gets a parent of its own, whose pre-imports its loaders never trigger.
        processors: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        groups = [[MWAA_ELT, HAND_WRITTEN], [DAG_FACTORY]]
        for step in range(size.repetitions):
            progress(f"DAG processor, repetition {step + 1} of {size.repetitions}")
            for group in groups[step % 2 :] + groups[: step % 2]:
                pair = group if step % 2 == 0 else group[::-1]
                dags_folders = [arg for v in pair for arg in ("--dags-folder", str(folders[v]))]
                report = _probe(["scheduler", *dags_folders, "--files", *sample])
                for variant in group:
                    files = report["variants"][folders[variant].name]
                    failed = [f for f in files if f.get("error") or f["import_errors"]]
                    if failed:
                        raise BenchError(f"{variant}: DAG-processor parse failed: {failed[:3]}")
                    processors[variant].append(
                        {
                            "files": files,
                            "providers_warm_up_seconds": report["providers_warm_up_seconds"],
                        }
                    )

        files = {
            MWAA_ELT: {"py_bytes": _folder_bytes(folders[MWAA_ELT], ".py")},
            HAND_WRITTEN: {"py_bytes": _folder_bytes(folders[HAND_WRITTEN], ".py")},
            DAG_FACTORY: {
                "py_bytes": _folder_bytes(folders[DAG_FACTORY], ".py"),
                "yaml_bytes": _folder_bytes(folders[DAG_FACTORY], ".yml"),
            },
        }

    found_versions = described[MWAA_ELT]["versions"]
    return {
        "benchmark": "parse_cost",
        "stage": STAGE,
        "pipelines": {"athena": size.athena, "emr": size.emr, "total": len(pipelines)},
        "tasks": described[MWAA_ELT]["task_count"],
        "repetitions": size.repetitions,
        "dag_processor_sample": len(sample),
        "quick": quick,
        "cores": os.cpu_count(),
        "python": described[MWAA_ELT]["python_version"],
        "platform": platform.platform(),
        # Other work on the machine skews timings; the 1-minute load average says how much.
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "versions": {
            "mwaa-elt": version("mwaa-elt"),
            **{k: v for k, v in found_versions.items() if v is not None},
        },
        "versions_match_dagbag_venv": True,  # _check_versions stops the bench otherwise
        "targets": {
            "mwaa-elt / hand-written": TARGET_VS_HAND_WRITTEN,
            "mwaa-elt / dag-factory": TARGET_VS_DAG_FACTORY,
        },
        "equivalence": {
            "dags_compared": len(reference),
            "tasks_compared": described[MWAA_ELT]["task_count"],
            "hand_written_identical": True,
            "dag_factory_differences": DAG_FACTORY_DIFFERENCES,
        },
        "files": files,
        "dagbag_fill": _fill_summary(fills),
        "dag_processor": _processor_summary(processors),
    }


# --- the report -----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _table(mode: dict[str, Any]) -> list[str]:
    ratios = mode["ratios"]
    met = ratios["target_vs_hand_written_met"] and ratios["target_vs_dag_factory_met"]
    verdict = (
        "yes"
        if met
        else "no: "
        + ", ".join(
            f"{name} {ratios[name]:.3f}{TIMES} > {limit}{TIMES}"
            for name, limit, ok in (
                ("mwaa-elt / hand-written", TARGET_VS_HAND_WRITTEN, "target_vs_hand_written_met"),
                ("mwaa-elt / dag-factory", TARGET_VS_DAG_FACTORY, "target_vs_dag_factory_met"),
            )
            if not ratios[ok]
        )
    )
    lines = [
        f"| variant | per-DAG median | min{DASH}max | ratio vs hand-written | ratio vs dag-factory "
        "| target met? |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        per_dag = mode["variants"][variant]["per_dag"]
        cells = [
            f"{ratios[f'{variant} / {other}']:.2f}{TIMES}" if variant != other else f"1.00{TIMES}"
            for other in (HAND_WRITTEN, DAG_FACTORY)
        ]
        lines.append(
            f"| {variant} | {_ms(per_dag['median_s'])} | "
            f"{_ms(per_dag['min_s'])}{DASH}{_ms(per_dag['max_s'])} | "
            f"{cells[0]} | {cells[1]} | {verdict if variant == MWAA_ELT else '—'} |"
        )
    return lines


def _cpu_line(mode: dict[str, Any]) -> str:
    """The same comparison in CPU time, which other work on the machine disturbs far less."""
    ratios = mode["cpu_ratios"]
    medians = ", ".join(
        f"{v} {_ms(mode['variants'][v]['per_dag_cpu']['median_s'])}" for v in VARIANTS
    )
    return (
        f"CPU time per DAG, median: {medians}; mwaa-elt / hand-written "
        f"{ratios['mwaa-elt / hand-written']:.2f}{TIMES}, mwaa-elt / dag-factory "
        f"{ratios['mwaa-elt / dag-factory']:.2f}{TIMES}."
    )


def _busy_note(result: dict[str, Any]) -> list[str]:
    load = max(result["load_average"].values())
    if load <= (result["cores"] or 1):
        return []
    return [
        "",
        f"The machine was busy (load average up to {load:.1f} on {result['cores']} cores): "
        "wall-clock times are noisy; CPU time, shown under each table, is the steadier "
        "comparison.",
    ]


def _sample_text(result: dict[str, Any]) -> str:
    every = (QUICK if result["quick"] else FULL).processor_every
    return "every pipeline" if every == 1 else f"every {every}th pipeline of each kind"


def markdown(result: dict[str, Any]) -> list[str]:
    """The parse-cost section of bench/results.md."""
    versions = result["versions"]
    fill, processor = result["dagbag_fill"], result["dag_processor"]
    shown = ", ".join(f"{name} {value}" for name, value in versions.items())
    lines = [
        "## Parse cost of a generated DAG",
        "",
        f"{result['pipelines']['total']} pipelines ({result['pipelines']['athena']} six-task "
        f"Athena, {result['pipelines']['emr']} EMR: create cluster, Hive and Spark step + sensor, "
        f"terminate; {result['tasks']} tasks), each expressed three ways: rendered by mwaa-elt "
        f"(stage {result['stage']}), dag-factory YAML with one `load_yaml_dags` loader per YAML, "
        "and a hand-written DAG file with the same operators and arguments. Before timing, the "
        f"bench proves the three build the same DAGs ({result['equivalence']['dags_compared']} "
        "DAGs, every task's operator, template fields, arguments, callbacks, outlets and "
        "dependencies); dag-factory differs only where it must: "
        + "; ".join(result["equivalence"]["dag_factory_differences"].values())
        + ".",
        "",
        f"All parsed by Airflow {versions.get('apache-airflow')} (the {result['stage']} stage's) "
        f"in one venv with the DagBag venv's pins, {result['repetitions']} fresh process(es) per "
        f"variant and mode, {result['cores']} cores (load average "
        f"{result['load_average']['before']:.1f} before, {result['load_average']['after']:.1f} "
        f"after), Python {result['python']}; {shown}.",
        "",
        "Measured at steady state, as a scheduler re-parses unchanged files: compiled DAG files "
        "are cached in `__pycache__` (an untimed first parse writes them), and Airflow's "
        "ProvidersManager is initialised before the clock starts (a one-time "
        f"{_ms(processor['variants'][MWAA_ELT]['providers_warm_up']['median_s'])} that every "
        "variant's first Asset would pay). A ratio is the median over repetitions of that "
        "repetition's ratio: within a repetition the variants are measured side by side.",
        *_busy_note(result),
        "",
        "### DagBag fill (one process, every file)",
        "",
        "A `DagBag` of each file, in one fresh process per repetition that has imported the "
        "Airflow modules the DAG files use (the same set for every variant) and parsed one Athena "
        "and one EMR file per variant untimed (one-time imports, dag-factory's own included). "
        "The three variants alternate file by file, so all see the same moment's load; per DAG "
        "= the files' fill time / DAGs.",
        "",
        *_table(fill),
        "",
        _cpu_line(fill),
        "",
        "Airflow's own `dagbag_stats`, median per file: "
        + ", ".join(
            f"{v} {_ms(fill['variants'][v]['dagbag_stats_per_file']['median_s'])}" for v in VARIANTS
        )
        + ".",
        "",
        "### DAG processor (one forked process per file, as Airflow 3 parses)",
        "",
        f"{result['dag_processor_sample']} files ({_sample_text(result)}) per repetition. "
        "The parent pre-imports the Airflow modules each file imports "
        "(Airflow's `parsing_pre_import_modules`), as the DAG processor does; the child builds a "
        "DagBag of that file (timed here) and serializes it. mwaa-elt and hand-written files "
        "share a parent and alternate file by file (same imports, same moment's load); "
        "dag-factory has its own parent: its loader imports no Airflow module, so each child "
        "imports dag-factory and the operators its YAML names.",
        "",
        *_table(processor),
        "",
        _cpu_line(processor),
        "",
        "Per file, median: "
        + ", ".join(
            f"{v} parse {_ms(processor['variants'][v]['dagbag_stats_per_file']['median_s'])} "
            f"(`dagbag_stats`) + serialize "
            f"{_ms(processor['variants'][v]['serialize_per_file']['median_s'])}, whole process "
            f"{_ms(processor['variants'][v]['process_per_file']['median_s'])}"
            for v in VARIANTS
        )
        + ".",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few pipelines, one repetition")
    args = parser.parse_args(argv)
    try:
        result = run(quick=args.quick, progress=lambda line: print(line, file=sys.stderr))
    except BenchError as error:
        print(f"parse-cost benchmark: {error}", file=sys.stderr)
        return 1
    JSON_OUT.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
