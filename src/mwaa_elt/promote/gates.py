"""Gates a promotion passes before anything is written: DagBag integrity and package coverage."""

from __future__ import annotations

import atexit
import contextlib
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mwaa_elt.airflow_versions import MWAA_PREINSTALLED_PROVIDERS
from mwaa_elt.check import (
    PARSE_TIME,
    CheckReport,
    StartedProbe,
    cancel_probe,
    run_started_each,
    send_folders,
    start_probe,
)
from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.parallel import process_count
from mwaa_elt.promote import airflow_ahead
from mwaa_elt.scratch import scratch_folder
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.render import RenderResult

# Modules that come with Airflow itself rather than from a distribution requirements.txt names.
_AIRFLOW_CORE = {"airflow", "pendulum"}
# Parse time depends on how loaded the machine is (seconds on a busy CI runner for a file MWAA
# parses in milliseconds), so it is `check`'s budget, not a reason to refuse a promotion.
_NOT_GATING = {PARSE_TIME}
# Provider namespaces whose distribution name takes two module levels (common.sql, cncf...).
_TWO_LEVEL = {"alibaba", "apache", "atlassian", "cncf", "common", "dbt", "microsoft"}


# DagBag probes started ahead of their gate (`start_dagbag_gate`), by Airflow version and
# project: the gate that runs next for them takes one instead of starting Airflow anew.
_started: dict[tuple[str, Path], StartedProbe] = {}


def start_dagbag_gate(airflow_version: str, project_root: Path) -> None:
    """Start the Airflow process of a DagBag gate that may run soon, so that Airflow imports
    while the promotion still reads, validates and renders. It runs below the caller's
    priority: when there turns out to be nothing to gate, it has only taken idle CPU before
    it is ended. Failing to start is left to the gate itself to report, in its turn."""
    key = (airflow_version, project_root)
    if key in _started:
        return
    ahead = airflow_ahead.take(airflow_version, project_root)  # started by `mwaa-elt` first
    if ahead is not None:
        _started[key] = ahead
        return
    try:
        _started[key] = start_probe(
            airflow_version, project_root=project_root, niceness=airflow_ahead.NICENESS
        )
    except (MwaaEltError, OSError):
        return


def start_gates_of(stage_name: str, stacks_dir: Path, project_root: Path) -> None:
    """`start_dagbag_gate` for each environment of the stage named `stage_name` (its own, and
    a cutover's green one), from the stack files alone: a command starts Airflow with this
    before it imports what talks to AWS. An unknown stage or unreadable stacks start nothing:
    the command reports them in its turn. Nor does a project whose gates were started already:
    `mwaa-elt` opened the promotion before its command line (`opening.open_ahead`)."""
    if any(root == project_root for _, root in _started):
        return
    from mwaa_elt.stage import load_all_stages
    from mwaa_elt.stage.green import environments

    try:
        stage = load_all_stages(stacks_dir).get(stage_name)
    except MwaaEltError:
        return
    for environment in environments(stage) if stage is not None else []:
        start_dagbag_gate(environment.airflow.version, project_root)


@dataclass(frozen=True)
class _SentAhead:
    """DAG files a started probe loads ahead of their gate (`start_dagbag_loads`)."""

    dags: dict[str, bytes]  # by file name, the bytes being loaded
    scratch: tempfile.TemporaryDirectory[str]  # the folders the probe was sent (`probe.sent`)


_sent_ahead: dict[tuple[str, Path], _SentAhead] = {}


def start_dagbag_loads(render: RenderResult, airflow_version: str, project_root: Path) -> None:
    """Send the DAG files of `render` to the Airflow process started ahead of their gate
    (`start_dagbag_gate`), so that they load while the promotion still bundles, plans and runs
    the requirements gate. The gate takes these loads when they are of the files it gates (it
    reports on those files only), and loads anew otherwise; a promotion that turns out to have
    nothing to gate ends them (`cancel_started_gates`). Without a started, unsent probe of that
    version, nothing is sent."""
    key = (airflow_version, project_root)
    probe = _started.get(key)
    if probe is None or probe.sent is not None or not render.pipelines:
        return
    dags = _dag_files(render, render.pipelines)
    scratch = scratch_folder("mwaa-elt-gate-", [len(data) for data in dags.values()])
    try:
        folders = _write_shares(dags, Path(scratch.name))
        send_folders(probe, folders)
    except OSError:  # the gate writes its files itself, in its turn
        scratch.cleanup()
        return
    _sent_ahead[key] = _SentAhead(dags, scratch)


def cancel_started_gates(keep: Collection[str] = ()) -> None:
    """End the probes started ahead of a gate that will not run (nothing to gate, or refused
    before it), and what they load, all but those of the Airflow versions in `keep`."""
    airflow_ahead.end_untaken()
    for key in [key for key in _started if key[0] not in keep]:
        cancel_probe(_started.pop(key))
    for key in [key for key in _sent_ahead if key[0] not in keep]:
        _sent_ahead.pop(key).scratch.cleanup()


atexit.register(cancel_started_gates)


def dagbag_gate(
    render: RenderResult, stage: Stage, project_root: Path, pipelines: Collection[str]
) -> CheckReport:
    """Load the DAG files of `pipelines` (those a promotion writes) with the DagBag of the
    stage's Airflow; ConfigError on failure. DAG ids are unique by validation already, so a
    large batch is split into one share per core (`parallel.process_count`), each loaded in a
    process forked from one Airflow probe once it has imported Airflow: the probe started ahead
    (`start_dagbag_gate`) when there is one, else one started now. Files that probe was sent
    ahead (`start_dagbag_loads`) are taken when they hold these bytes."""
    version = stage.airflow.version
    key = (version, project_root)
    dags = _dag_files(render, pipelines)
    probe = _started.pop(key, None)
    sent = _sent_ahead.pop(key, None)
    if sent is not None and any(sent.dags.get(name) != data for name, data in dags.items()):
        sent.scratch.cleanup()  # loading other files: start over
        if probe is not None:
            cancel_probe(probe)
        probe, sent = None, None
    probe = probe or start_probe(version, project_root=project_root)
    try:
        with contextlib.ExitStack() as cleanup:
            if sent is None:
                sizes = [len(data) for data in dags.values()]
                scratch = cleanup.enter_context(scratch_folder("mwaa-elt-gate-", sizes))
                folders = _write_shares(dags, Path(scratch))
            else:
                cleanup.callback(sent.scratch.cleanup)
                assert probe.sent is not None  # registered only once sent
                folders = list(probe.sent)
            parts = run_started_each(probe, folders)
    finally:
        cancel_probe(probe)  # ends what it forked too, should the load have been cut short
    report = CheckReport(
        airflow_version=parts[0].airflow_version,
        dags_folder=folders[0].parent,
        budget_seconds=parts[0].budget_seconds,
        probe_seconds=max(part.probe_seconds for part in parts),
        files=tuple(file for part in parts for file in part.files if file.path.name in dags),
    )
    failures = [
        f"{file.path.name}: {finding.rule}: {finding.message}"
        for file in report.files
        for finding in file.findings
        if finding.blocking and finding.rule not in _NOT_GATING
    ]
    if failures:
        raise ConfigError(
            [
                *failures,
                f"integrity gate failed under Airflow {report.airflow_version}: nothing "
                f"was promoted to {stage.name} (mwaa-elt check --stage {stage.name} shows details)",
            ]
        )
    return report


def _dag_files(render: RenderResult, pipelines: Collection[str]) -> dict[str, bytes]:
    """The DAG file of each of `pipelines`, by file name (unique: one DAG file per pipeline,
    named after its DAG id), in name order."""
    paths = sorted(render.pipelines[name].dag_path for name in pipelines)
    return {PurePosixPath(path).name: render.files[path] for path in paths}


def _write_shares(dags: Mapping[str, bytes], scratch: Path) -> list[Path]:
    """`dags` written into one folder per process that loads them (`parallel.process_count`),
    dealt out in turn."""
    folders = [scratch / f"part-{index}" for index in range(process_count(len(dags)))]
    for folder in folders:
        folder.mkdir()
    for index, (name, data) in enumerate(dags.items()):
        (folders[index % len(folders)] / name).write_bytes(data)
    return folders


def required_distributions(modules: Iterable[str]) -> set[str]:
    """The distributions `modules` (what a DAG file imports: `RenderedPipeline.dag_imports`)
    belong to, beyond the standard library and Airflow's core."""
    from packaging.utils import canonicalize_name  # only a promotion with DAGs to gate

    return {canonicalize_name(d) for d in map(_distribution, modules) if d is not None}


def _distribution(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        depth = 2 if parts[2] in _TWO_LEVEL and len(parts) > 3 else 1
        return "apache-airflow-providers-" + "-".join(parts[2 : 2 + depth])
    if parts[0] in _AIRFLOW_CORE or parts[0] in sys.stdlib_module_names:
        return None
    return parts[0]


def requirements_gate(
    render: RenderResult,
    stage: Stage,
    requirements_source: Path,
    pipelines: Collection[str] | None = None,
) -> dict[str, set[str]]:
    """Refuse DAGs (of `pipelines`, default all) that import a distribution the stage's MWAA
    environment does not install; per pipeline checked, the distributions it imports."""
    from mwaa_elt.infra.documents.environment_files import build_requirements, package_names

    provided = package_names(build_requirements(stage, requirements_source))
    provided |= MWAA_PREINSTALLED_PROVIDERS.get(stage.airflow.major, frozenset())
    missing: dict[str, set[str]] = {}
    imported: dict[str, set[str]] = {}
    for name, pipeline in render.pipelines.items():
        if pipelines is not None and name not in pipelines:
            continue
        imported[name] = required_distributions(pipeline.dag_imports)
        for distribution in imported[name]:
            if distribution not in provided:
                missing.setdefault(distribution, set()).add(name)
    if missing:
        raise ConfigError(
            [
                f"{', '.join(sorted(users))}: imports {distribution}, which stage {stage.name}'s "
                f"MWAA environment does not install; add it to {requirements_source.name} and "
                f"run `pulumi up --stack {stage.name}` first (promotion never changes "
                "requirements.txt)"
                for distribution, users in sorted(missing.items())
            ]
        )
    return imported
