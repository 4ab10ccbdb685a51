"""An upgrade rehearsal: every pipeline live in a stage, re-rendered and gated for another Airflow.

The sources come from the stage's manifest (the bundles and template snapshots promotion stored),
never from the working tree, so the rehearsal proves what is actually running. They are rendered
for a copy of the stage that differs only in its Airflow version, and pass the gates a promotion
into that stage would: validation (with the target line's template rules), rendering, the DagBag
of MWAA's image for the target (its local environment is built first when missing) and package
coverage; then requirements.txt against the target's constraints, ruff's Airflow 3 rules when the
rehearsal crosses into 3.x, and the run-time differences the pipelines' specs expose.

`prepare` reads the stage and its manifest and plans the steps (`plan_rehearsal`, without side
effects), `explain` prints them, `run` executes them and returns a `RehearsalReport`, which
`write_report` stores as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mwaa_elt import airflow_environments
from mwaa_elt.airflow_environments import airflow_python
from mwaa_elt.check import PARSE_TIME, run_dagbag
from mwaa_elt.errors import ConfigError
from mwaa_elt.files import replace_file
from mwaa_elt.lifecycle.airflow3_lint import (
    LintFinding,
    PythonSource,
    collect_sources,
    lint_python,
)
from mwaa_elt.lifecycle.requirements_check import RequirementFinding, check_requirements
from mwaa_elt.lifecycle.routes import Route, plan_route
from mwaa_elt.lifecycle.runtime_differences import (
    CRON_INTERVALS_OPTION,
    RuntimeDifference,
    differences,
)
from mwaa_elt.project import Project
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.sources import restore_sources
from mwaa_elt.promote.store import StageStore
from mwaa_elt.render import RenderResult
from mwaa_elt.stage import Stage, load_all_stages, load_stage

GateName = Literal["validate", "render", "dagbag", "packages"]
GATES: tuple[GateName, ...] = ("validate", "render", "dagbag", "packages")


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LivePipeline:
    """A pipeline live in the stage: the promoted version the rehearsal renders."""

    name: str
    source_hash: str
    git_commit: str | None
    promoted_at: str


@dataclass(frozen=True)
class BuildEnvironment:
    """Build the local environment of MWAA's image for the target: it is missing."""

    airflow_version: str
    path: str


@dataclass(frozen=True)
class RenderLive:
    """Validate and render every live pipeline from its promoted bundle for the target."""

    pipelines: tuple[str, ...]
    airflow_version: str


@dataclass(frozen=True)
class LoadDagBag:
    """Load every rendered DAG file with the DagBag of the target's MWAA environment."""

    airflow_version: str


@dataclass(frozen=True)
class CheckPackages:
    """Check that the target environment installs every distribution the DAGs import."""

    requirements: str


@dataclass(frozen=True)
class CheckConstraints:
    """Resolve requirements.txt against the constraints of MWAA's image for the target."""

    requirements: str
    airflow_version: str


@dataclass(frozen=True)
class LintAirflow3:
    """Lint plugins, the startup script's Python, pipeline scripts and DAGs for Airflow 3."""

    plugins: str
    startup_script: str


@dataclass(frozen=True)
class ListRuntimeDifferences:
    """List how the live pipelines' runs change between the two Airflow lines."""

    from_major: int
    to_major: int


Step = (
    BuildEnvironment
    | RenderLive
    | LoadDagBag
    | CheckPackages
    | CheckConstraints
    | LintAirflow3
    | ListRuntimeDifferences
)


@dataclass(frozen=True)
class RehearsalPlan:
    """What a rehearsal of `route` for a stage will do, decided before anything runs."""

    stage: str
    route: Route
    manifest_uri: str
    pipelines: tuple[LivePipeline, ...]
    steps: tuple[Step, ...]


def target_stage(stage: Stage, airflow_version: str) -> Stage:
    """A copy of `stage` that runs `airflow_version`, everything else unchanged."""
    config = stage.config.model_copy(update={"airflow_version": airflow_version})
    return dataclasses.replace(stage, config=config)


def plan_rehearsal(
    stage: Stage,
    route: Route,
    manifest: Manifest,
    manifest_uri: str,
    project: Project,
    *,
    environment_missing: bool,
) -> RehearsalPlan:
    """The steps rehearsing `route` for the pipelines of `manifest`; no side effects."""
    live = tuple(
        LivePipeline(name, record.source_hash, record.git_commit, record.promoted_at)
        for name, record in sorted(manifest.pipelines.items())
    )
    target = route.to_version
    requirements = _shown(project.environment_dir / "requirements.txt", project.root)
    steps: list[Step] = []
    if environment_missing and live:
        env = airflow_environments.environment(target)
        steps.append(BuildEnvironment(target, str(env.path)))
    if live:
        steps += [
            RenderLive(tuple(p.name for p in live), target),
            LoadDagBag(target),
            CheckPackages(requirements),
        ]
    steps.append(CheckConstraints(requirements, target))
    from_major, to_major = _major(route.from_version), _major(target)
    if from_major == 2 and to_major == 3:
        steps.append(
            LintAirflow3(
                _shown(project.environment_dir / "plugins", project.root),
                _shown(project.environment_dir / "startup.sh", project.root),
            )
        )
    if from_major != to_major and live:
        steps.append(ListRuntimeDifferences(from_major, to_major))
    return RehearsalPlan(stage.name, route, manifest_uri, live, tuple(steps))


def explain(plan: RehearsalPlan) -> list[str]:
    """One line per step of `plan`, in the order they run."""
    return [describe(step) for step in plan.steps]


def describe(step: Step) -> str:
    """What `step` does, in one line."""
    if isinstance(step, BuildEnvironment):
        return f"build {step.path} (MWAA's Airflow {step.airflow_version} image)"
    if isinstance(step, RenderLive):
        return (
            f"validate and render {len(step.pipelines)} live pipeline(s) from their promoted "
            f"bundles for Airflow {step.airflow_version}: {', '.join(step.pipelines)}"
        )
    if isinstance(step, LoadDagBag):
        return f"load the DAG files with DagBag under Airflow {step.airflow_version}"
    if isinstance(step, CheckPackages):
        return f"check the DAGs' imports against {step.requirements} and MWAA's image"
    if isinstance(step, CheckConstraints):
        return f"resolve {step.requirements} against Airflow {step.airflow_version}'s constraints"
    if isinstance(step, LintAirflow3):
        return (
            f"lint {step.plugins}/, {step.startup_script}'s Python, pipeline scripts and DAGs "
            "with ruff's Airflow 3 rules"
        )
    return (
        f"list run-time differences Airflow {step.from_major} → {step.to_major} for these pipelines"
    )


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict for one pipeline: passed, failed with messages, or not run."""

    gate: GateName
    status: Literal["passed", "failed", "not run"]
    messages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "status": self.status, "messages": list(self.messages)}


@dataclass(frozen=True)
class PipelineReport:
    """A live pipeline's version and the result of each gate under the target."""

    pipeline: LivePipeline
    gates: tuple[GateResult, ...]

    @property
    def ok(self) -> bool:
        return all(gate.status == "passed" for gate in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self.pipeline),
            "ok": self.ok,
            "gates": [gate.to_dict() for gate in self.gates],
        }


@dataclass(frozen=True)
class RehearsalReport:
    """Everything a rehearsal found; `ok` when nothing blocks the upgrade."""

    stage: str
    route: Route
    manifest_uri: str
    pipelines: tuple[PipelineReport, ...]
    requirements: tuple[RequirementFinding, ...]
    lint: tuple[LintFinding, ...]
    differences: tuple[RuntimeDifference, ...]
    linted: bool

    @property
    def ok(self) -> bool:
        return (
            all(p.ok for p in self.pipelines)
            and not any(f.blocking for f in self.requirements)
            and not any(f.blocking for f in self.lint)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "ok": self.ok,
            "route": self.route.to_dict(),
            "manifest": self.manifest_uri,
            "pipelines": [p.to_dict() for p in self.pipelines],
            "requirements": [f.to_dict() for f in self.requirements],
            "airflow3_lint": {"ran": self.linted, "findings": [f.to_dict() for f in self.lint]},
            "runtime_differences": [d.to_dict() for d in self.differences],
        }


# -- preparing, running, storing ---------------------------------------------------------------


@dataclass(frozen=True)
class Rehearsal:
    """A planned rehearsal and what its executor reads: stages, the stage's store, manifest."""

    plan: RehearsalPlan
    stages: Mapping[str, Stage]
    store: StageStore
    manifest: Manifest
    project: Project


def prepare(
    project: Project, stage: str, to_version: str, store_for: Callable[[Stage], StageStore]
) -> Rehearsal:
    """Read `stage`'s stack file and manifest and plan its rehearsal on `to_version`; ConfigError
    for a stage or version MWAA has no route for."""
    current = load_stage(project.stacks_dir, stage)
    stages = load_all_stages(project.stacks_dir)
    route = plan_route(current.airflow.version, to_version)
    store = store_for(current)
    manifest, _ = store.load_manifest()
    try:
        airflow_python(to_version, project.root)
        missing = False
    except ConfigError:
        missing = True
    plan = plan_rehearsal(
        current,
        route,
        manifest,
        store.uri(current.manifest_key),
        project,
        environment_missing=missing,
    )
    return Rehearsal(plan, stages, store, manifest, project)


def run(rehearsal: Rehearsal, progress: Callable[[str], None] = lambda _: None) -> RehearsalReport:
    """Execute a prepared rehearsal."""
    return execute(
        rehearsal.plan,
        rehearsal.stages,
        rehearsal.store,
        rehearsal.manifest,
        rehearsal.project,
        progress,
    )


def default_report_path(project: Project, stage: str, to_version: str) -> Path:
    """Where the JSON report goes unless told: build/upgrade/<stage>-<version>.json."""
    return project.root / "build" / "upgrade" / f"{stage}-{to_version}.json"


def write_report(path: Path, report: RehearsalReport) -> None:
    """Write the report as JSON, whole or not at all: a temporary file renamed over `path`."""
    data = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    replace_file(path, data.encode("utf-8"))


# -- the executor ----------------------------------------------------------------------------


def execute(
    plan: RehearsalPlan,
    stages: Mapping[str, Stage],
    store: StageStore,
    manifest: Manifest,
    project: Project,
    progress: Callable[[str], None] = lambda _: None,
) -> RehearsalReport:
    """Run `plan`'s steps (the stage's store is only read) and report what they found."""
    stage = stages[plan.stage]
    target = target_stage(stage, plan.route.to_version)
    gated = {**stages, stage.name: target}
    results: dict[str, dict[GateName, GateResult]] = {p.name: {} for p in plan.pipelines}
    requirements: tuple[RequirementFinding, ...] = ()
    lint: tuple[LintFinding, ...] = ()
    found: list[RuntimeDifference] = []
    render: RenderResult | None = None
    requirements_file = project.environment_dir / "requirements.txt"
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-rehearsal-") as scratch:
        sources = Path(scratch) / "pipelines"
        if plan.pipelines:
            restore_sources(store, manifest, sources, sorted(manifest.pipelines))
        for step in plan.steps:
            progress(describe(step))
            if isinstance(step, BuildEnvironment):
                env = airflow_environments.environment(step.airflow_version)
                airflow_environments.build(env, airflow_environments.uv_binary())
            elif isinstance(step, RenderLive):
                render = _render(gated, store, target, results)
            elif isinstance(step, LoadDagBag):
                _dagbag(render, target, project, results)
            elif isinstance(step, CheckPackages):
                _packages(render, target, requirements_file, results)
            elif isinstance(step, CheckConstraints):
                requirements = check_requirements(
                    requirements_file,
                    target,
                    stage,
                    shown=_shown(requirements_file, project.root),
                )
            elif isinstance(step, LintAirflow3):
                lint = _lint(project, sources, render)
            else:
                cron_intervals = _cron_intervals(stage)
                for live in plan.pipelines:
                    folder = sources / live.name
                    spec = _spec_of(folder, live.name)
                    found += differences(
                        live.name,
                        folder,
                        spec,
                        step.from_major,
                        step.to_major,
                        sources.parent,
                        cron_intervals,
                    )
    pipelines = tuple(
        PipelineReport(
            live,
            tuple(results[live.name].get(gate, GateResult(gate, "not run")) for gate in GATES),
        )
        for live in plan.pipelines
    )
    return RehearsalReport(
        stage=plan.stage,
        route=plan.route,
        manifest_uri=plan.manifest_uri,
        pipelines=pipelines,
        requirements=requirements,
        lint=lint,
        differences=tuple(found),
        linted=any(isinstance(step, LintAirflow3) for step in plan.steps),
    )


def _render(
    stages: Mapping[str, Stage],
    store: StageStore,
    target: Stage,
    results: dict[str, dict[GateName, GateResult]],
) -> RenderResult | None:
    """Validate and render the live versions for `target` (promotion's own path from a stage)."""
    from mwaa_elt.promote.builds import from_stage

    try:
        prepared = from_stage(stages, store, target, None)
    except ConfigError as error:
        problems = [m for m in error.messages if not m.startswith("the versions live in")]
        for name, gates in results.items():
            mine = tuple(m for m in problems if f"pipelines/{name}/" in m)
            # Problems across specs name no single pipeline: they fail every pipeline.
            shared = tuple(m for m in problems if "pipelines/" not in m)
            failed = mine + shared
            gates["validate"] = GateResult("validate", "failed" if failed else "passed", failed)
            if not failed:  # valid itself; the render of all live pipelines together did not run
                gates["render"] = GateResult(
                    "render", "not run", ("another live pipeline failed validation",)
                )
        return None
    for name, gates in results.items():
        gates["validate"] = GateResult("validate", "passed")
        rendered = name in prepared.render.pipelines
        gates["render"] = GateResult(
            "render",
            "passed" if rendered else "failed",
            () if rendered else ("the render produced no DAG file for it",),
        )
    return prepared.render


def _dagbag(
    render: RenderResult | None,
    target: Stage,
    project: Project,
    results: dict[str, dict[GateName, GateResult]],
) -> None:
    if render is None:
        return
    by_file = {
        PurePosixPath(rendered.dag_path).name: name for name, rendered in render.pipelines.items()
    }
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-rehearsal-dags-") as scratch:
        folder = Path(scratch)
        for rendered in render.pipelines.values():
            dag_path = PurePosixPath(rendered.dag_path)
            (folder / dag_path.name).write_bytes(render.files[dag_path.as_posix()])
        report = run_dagbag(folder, target.airflow.version, project_root=project.root)
    seen = set()
    for file in report.files:
        name = by_file.get(file.path.name)
        if name is None:
            continue
        seen.add(name)
        failures = tuple(
            f"{file.path.name}: {finding.rule}: {finding.message}"
            for finding in file.findings
            if finding.blocking and finding.rule != PARSE_TIME
        )
        results[name]["dagbag"] = GateResult("dagbag", "failed" if failures else "passed", failures)
    for name in set(render.pipelines) - seen:
        results[name]["dagbag"] = GateResult(
            "dagbag", "failed", ("DagBag did not report on its DAG file",)
        )


def _packages(
    render: RenderResult | None,
    target: Stage,
    requirements: Path,
    results: dict[str, dict[GateName, GateResult]],
) -> None:
    from mwaa_elt.promote.gates import requirements_gate

    if render is None:
        return
    for name in render.pipelines:
        try:
            requirements_gate(render, target, requirements, [name])
        except ConfigError as error:
            results[name]["packages"] = GateResult("packages", "failed", tuple(error.messages))
        else:
            results[name]["packages"] = GateResult("packages", "passed")


def _lint(project: Project, sources: Path, render: RenderResult | None) -> tuple[LintFinding, ...]:
    files: dict[str, Path] = {}
    plugins = project.environment_dir / "plugins"
    if plugins.is_dir():
        for path in sorted(plugins.rglob("*.py")):
            files[_shown(path, project.root)] = path
    for path in sorted(sources.rglob("*.py")):
        files[f"(bundle) {path.relative_to(sources.parent).as_posix()}"] = path
    startup = project.environment_dir / "startup.sh"
    collected = collect_sources(files, startup, _shown(startup, project.root))
    if render is not None:
        for rendered in render.pipelines.values():
            text = render.files[rendered.dag_path].decode("utf-8")
            collected.append(PythonSource(f"(rendered) {rendered.dag_path}", text))
    return lint_python(collected)


def _spec_of(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.yaml", folder / f"{name}.yml"):
        if candidate.is_file():
            return candidate
    specs = sorted(folder.glob("*.y*ml"))
    if not specs:
        raise ConfigError(f"the source bundle of {name} holds no spec file")
    return specs[0]


def _cron_intervals(stage: Stage) -> bool:
    value = stage.config.airflow_configuration_options.get(CRON_INTERVALS_OPTION, "")
    return value.strip().lower() == "true"


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
