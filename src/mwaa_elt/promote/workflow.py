"""The promotion workflow: prepare (what moves) → plan (its steps and the gates it must pass)
→ gates → execute, as SQLMesh separates its plan builder, explainer and evaluator.

`prepare_promotion` reads (the target's manifest, the source) and renders what changed; the plan
and its gates are data (`Promotion`), printed by `promote.explain`; `run_gate` runs one gate and
`execute_promotion` applies the plan under the stage lock. The CLI calls these and formats.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.project import Project
from mwaa_elt.promote import airflow_ahead
from mwaa_elt.promote import gates as gate_checks
from mwaa_elt.promote.apply import Progress
from mwaa_elt.promote.builds import Prepared, from_stage, from_working_tree
from mwaa_elt.promote.bundle import Bundle, build_bundle
from mwaa_elt.promote.execute import Outcome, Verify, execute
from mwaa_elt.promote.identity import Identity, caller_arn, emulated, identity_now
from mwaa_elt.promote.lock import LockInfo, clear_stale, lock_owner
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.mwaa import MwaaEnvironment, require_source_runs_succeeded
from mwaa_elt.promote.opening import Opening, PromoteRequest, TargetReads, open_promotion
from mwaa_elt.promote.plan import Plan, build_plan, keys_to_diff
from mwaa_elt.promote.rollback import plan_rollback
from mwaa_elt.promote.status import list_live, off_record
from mwaa_elt.promote.store import StageStore, make_client, store_client
from mwaa_elt.render.result import RenderResult
from mwaa_elt.render.workflow import not_rendered
from mwaa_elt.stage import Stage

# Called with a line saying what a slow part is doing (rendering, reading the source stage).
Notify = Callable[[str], None]

SANDBOX_HAS_NO_MWAA = (
    "the sandbox has no MWAA: pass --skip-mwaa-checks, or point at a real account "
    "(unset AWS_ENDPOINT_URL) — nothing was changed"
)


@dataclass(frozen=True)
class RequirementsGate:
    """Refuse DAGs importing a distribution the target's MWAA environment does not install."""

    requirements: Path
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class DagBagGate:
    """Load the DAG files the promotion writes with the DagBag of the target's Airflow."""

    airflow_version: str
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class SourceRunsGate:
    """Require the latest runs in the source stage of the pipelines that move to have succeeded."""

    source: Stage
    pipelines: tuple[str, ...]
    profile: str | None = None


@dataclass(frozen=True)
class AvailableGate:
    """Require the target's MWAA environment to be AVAILABLE before anything is written."""

    stage: Stage


Gate = RequirementsGate | DagBagGate | SourceRunsGate | AvailableGate


@dataclass(frozen=True)
class VerifyAfter:
    """After applying, wait for Airflow to parse the DAGs written; roll back failures if asked."""

    environment_name: str
    timeout_seconds: float
    rollback_on_error: bool = False


@dataclass(frozen=True)
class Promotion:
    """A planned promotion (or rollback): the plan, the gates it passes before anything is
    written, the live pipelines it keeps, and how Airflow verifies it afterwards."""

    project: Project
    target: Stage
    store: StageStore
    identity: Identity
    plan: Plan
    gates: tuple[Gate, ...]
    kept: tuple[str, ...] = ()  # live pipelines the source no longer has (without --prune)
    prepared: Prepared | None = None  # None for a rollback: nothing is rendered
    verify: VerifyAfter | None = None  # None with --skip-mwaa-checks

    @property
    def up_to_date(self) -> bool:
        """Nothing live changes: no gate has anything to protect."""
        return not self.plan.has_changes


@dataclass(frozen=True)
class Settled:
    """What an up-to-date promotion did: a stale lock cleared, or digests not recorded."""

    cleared: LockInfo | None = None
    warning: str | None = None  # the input digests could not be recorded


def mwaa_environment(stage: Stage, profile: str | None = None) -> MwaaEnvironment:
    """The stage's MWAA environment; refused, saying what to do, when boto3 points at an
    emulator on loopback (the sandbox), which has no MWAA API to call."""
    client = make_client("mwaa", stage.region, profile=profile)
    if emulated() and _loopback(str(client.meta.endpoint_url)):
        raise ConfigError(f"MWAA environment {stage.environment_name}: {SANDBOX_HAS_NO_MWAA}")
    return MwaaEnvironment(stage, client)


def _loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare_promotion(
    project: Project, request: PromoteRequest, notify: Notify | None = None
) -> Promotion:
    """Read the target's manifest, render what changed in the source and plan the promotion
    with its gates; nothing is written."""
    return prepare_promotions(project, request, notify)[0]


def prepare_promotions(
    project: Project,
    request: PromoteRequest,
    notify: Notify | None = None,
    opening: Opening | None = None,
) -> tuple[Promotion, ...]:
    """One promotion per environment of the target stage: its own and, while its stack has a
    `cutover` block, the green one (rendered for its Airflow version, paused on creation).
    All are planned before any is gated or written; nothing is written here. `opening` is the
    request's `open_promotion`, when the caller started its reads already."""
    # The opening started Airflow for the DagBag gates; what turns out to have nothing to gate
    # is ended before this returns.
    opening = opening or open_promotion(project, request)
    try:
        promotions = tuple(
            _prepare_into(project, opening, reads, request, notify) for reads in opening.reads
        )
    except BaseException:
        gate_checks.cancel_started_gates()
        raise
    # Prepared, so validated: the next command into this stage starts their Airflow first.
    versions = [promotion.target.airflow.version for promotion in promotions]
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, request.to, versions)
    gated = {
        gate.airflow_version
        for promotion in promotions
        for gate in promotion.gates
        if isinstance(gate, DagBagGate)
    }
    gate_checks.cancel_started_gates(keep=gated)
    return promotions


def _prepare_into(
    project: Project,
    opening: Opening,
    reads: TargetReads,
    request: PromoteRequest,
    notify: Notify | None,
) -> Promotion:
    from mwaa_elt.promote.hash_cache import load_folder_hashes
    from mwaa_elt.promote.inputs import environment_digest, folder_hashes
    from mwaa_elt.spec.targets import spec_targets

    target, store, identity = reads.environment, reads.store, reads.identity
    # The inputs are hashed while the manifest and the DAG prefix's listing are answered.
    specs = spec_targets(project, None)[0] if request.source is None else []
    record = load_folder_hashes(project.cache_dir if specs else None)
    hashed = folder_hashes(specs, record)
    environment = environment_digest(target, project.stacks_dir, project.root)
    templates = build_bundle(project.templates_dir) if request.source is None else None
    manifest, etag = reads.manifest.result()
    # DAG objects that are not the recorded version are converged by content, so their
    # pipelines are rendered even when their inputs are unchanged.
    current = list_live(store, manifest.pipelines, reads.dag_etags.result())
    opening.finish()  # before validation and rendering fork their workers
    drifted = off_record(store, manifest.pipelines, current)
    stages = opening.stages
    prepared = _prepare(
        project,
        stages,
        target,
        request,
        manifest,
        _Inputs(specs, hashed, environment, templates, set(drifted)),
        notify or (lambda _: None),
    )
    record.save()  # the working tree validated: its folder hashes are worth keeping
    # Only the pipelines rendered anew can get a new release: only their histories are read.
    manifest = store.load_histories(manifest, [build.name for build in prepared.builds])
    wanted = keys_to_diff(prepared.builds, manifest) if request.diffs else []
    names = {build.name for build in prepared.builds}
    plan = build_plan(
        target,
        prepared.builds,
        manifest,
        etag,
        source=prepared.source,
        identity=identity,
        live_dags=store.read_dags(wanted),
        prune=request.prune,
        unchanged=prepared.unchanged,
        off_record={name: live for name, live in drifted.items() if name in names},
    )
    kept = (
        ()
        if request.prune or not prepared.complete
        else tuple(sorted(set(manifest.pipelines) - names - set(prepared.unchanged)))
    )
    return Promotion(
        project,
        target,
        store,
        identity,
        plan,
        promotion_gates(project, stages, prepared, plan, request),
        kept,
        prepared,
        _verify_after(target, request.skip_mwaa_checks, request.rollback_on_error),
    )


def plan_rollback_promotion(
    project: Project,
    stage: str,
    wanted: dict[str, str | None],
    *,
    skip_mwaa_checks: bool,
) -> Promotion:
    """The rollback of each pipeline in `wanted` to the version a source-hash prefix names (None:
    the previous one), as a promotion whose only gate is MWAA's availability."""
    from mwaa_elt.stage import load_stage

    target = load_stage(project.stacks_dir, stage)
    store = StageStore(target, store_client(target.region))
    identity = identity_now(caller_arn(target))
    manifest, etag = store.load_manifest()
    plan = plan_rollback(store, manifest, etag, wanted, identity)
    gates: tuple[Gate, ...] = () if skip_mwaa_checks else (AvailableGate(target),)
    return Promotion(
        project,
        target,
        store,
        identity,
        plan,
        gates,
        verify=_verify_after(target, skip_mwaa_checks, rollback_on_error=False),
    )


def promotion_gates(
    project: Project,
    stages: dict[str, Stage],
    prepared: Prepared,
    plan: Plan,
    request: PromoteRequest,
) -> tuple[Gate, ...]:
    """The gates a plan that writes something must pass, in order: packages, DagBag, the
    source's latest runs, then (when applying) MWAA's availability. Pure: nothing runs here."""
    if not plan.has_changes:
        return ()
    target = prepared.target
    written = tuple(plan.changed())
    gates: list[Gate] = []
    if written:
        requirements = project.environment_dir / "requirements.txt"
        gates.append(RequirementsGate(requirements, written))
        gates.append(DagBagGate(target.airflow.version, written))
    source = prepared.source
    if (
        source in stages
        and target.config.gates.require_source_run_success
        and not request.skip_mwaa_checks
    ):
        moving = tuple(c.pipeline for c in plan.changes if c.action in {"added", "updated"})
        if moving:
            gates.append(SourceRunsGate(stages[source], moving, request.source_profile))
    if not request.skip_mwaa_checks and not request.plan_only:
        gates.append(AvailableGate(target))
    return tuple(gates)


def run_gate(promotion: Promotion, gate: Gate) -> None:
    """Run one gate of `promotion`; ConfigError (nothing written) when it refuses."""
    render = promotion.prepared.render if promotion.prepared is not None else None
    match gate:
        case RequirementsGate(requirements=requirements, pipelines=pipelines):
            assert render is not None
            gate_checks.requirements_gate(render, promotion.target, requirements, pipelines)
        case DagBagGate(pipelines=pipelines):
            assert render is not None
            gate_checks.dagbag_gate(render, promotion.target, promotion.project.root, pipelines)
        case SourceRunsGate(source=source, pipelines=pipelines, profile=profile):
            require_source_runs_succeeded(mwaa_environment(source, profile), list(pipelines))
        case AvailableGate(stage=stage):
            mwaa_environment(stage).require_available()


def settle_up_to_date(promotion: Promotion, *, plan_only: bool) -> Settled:
    """Finish a promotion with nothing to change: record the input digests of DAGs that render
    as recorded (under the lock; never failing the promotion), or clear a dead promoter's lock,
    so that the stage ends as a completed promotion leaves it."""
    owner = lock_owner(promotion.identity.promoted_by)
    if plan_only:
        return Settled()
    if promotion.plan.records_only:
        try:  # bookkeeping only: never breaks a lock, never fails the promotion
            execute(promotion.store, promotion.plan, owner=owner, identity=promotion.identity)
        except MwaaEltError as error:
            return Settled(warning="; ".join(error.messages))
        return Settled()
    return Settled(cleared=clear_stale(promotion.store, owner))


def execute_promotion(
    promotion: Promotion,
    *,
    force_unlock: bool = False,
    force_token: str | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Apply the plan under the stage lock, then verify with Airflow (`Promotion.verify`)."""
    after = promotion.verify
    verify = (
        None
        if after is None
        else Verify(
            mwaa_environment(promotion.target),
            timeout_seconds=after.timeout_seconds,
            rollback_on_error=after.rollback_on_error,
        )
    )
    return execute(
        promotion.store,
        promotion.plan,
        owner=lock_owner(promotion.identity.promoted_by),
        identity=promotion.identity,
        force_unlock=force_unlock,
        force_token=force_token,
        progress=progress,
        verify=verify,
    )


def _verify_after(target: Stage, skip: bool, rollback_on_error: bool) -> VerifyAfter | None:
    if skip:
        return None
    return VerifyAfter(
        target.environment_name,
        target.config.gates.import_error_timeout_seconds,
        rollback_on_error,
    )


@dataclass(frozen=True)
class _Inputs:
    """The working tree's specs and folder hashes, the digest of the inputs every pipeline
    shares, the templates' bundle (None from a stage), and the pipelines never to trust."""

    specs: Sequence[Path]
    hashed: Mapping[Path, str]
    environment: str
    templates: Bundle | None
    force: set[str]


def _prepare(
    project: Project,
    stages: dict[str, Stage],
    target: Stage,
    request: PromoteRequest,
    manifest: Manifest,
    inputs: _Inputs,
    notify: Notify,
) -> Prepared:
    """What the promotion moves: the working tree's pipelines, or the source stage's; only
    those whose inputs differ from what the target's manifest records are rendered."""
    from mwaa_elt.promote.inputs import select_working_tree
    from mwaa_elt.render.cache import kept_renders

    names: Sequence[str] | None = list(request.names) or None
    environment, templates, force = inputs.environment, inputs.templates, inputs.force

    def start_loads(render: RenderResult) -> None:
        # The DagBag gate's loads run while the rest is bundled, planned and gated.
        gate_checks.start_dagbag_loads(render, target.airflow.version, project.root)

    if request.source is None:
        assert templates is not None  # bundled for every promotion from the working tree
        selection = select_working_tree(
            list(inputs.specs),
            project.pipelines_dir,
            stages,
            manifest,
            environment,
            templates.source_hash,
            names,
            force=force,
            hashed=inputs.hashed,
            renders=lambda specs: kept_renders(
                specs,
                target,
                templates_dir=project.templates_dir,
                stacks_dir=project.stacks_dir,
                project_root=project.root,
                cache_dir=project.cache_dir,
            ),
        )
        if not selection.report.ok:
            raise not_rendered(selection.report)
        if selection.changed or selection.kept:
            taken = (
                f", {len(selection.kept)} taken as `mwaa-elt render` left them"
                if selection.kept
                else ""
            )
            notify(
                f"rendering {len(selection.changed)} changed pipeline(s) for {target.name} "
                f"({len(selection.unchanged)} unchanged{taken})…"
            )
        return from_working_tree(
            project,
            target,
            selection,
            templates,
            environment,
            complete=not names,
            on_rendered=start_loads,
        )
    notify(
        f"reading what is live in {request.source} and rendering what changed for {target.name}…"
    )
    source = stages[request.source]
    return from_stage(
        stages,
        StageStore(source, store_client(source.region, profile=request.source_profile)),
        target,
        names,
        target_manifest=manifest,
        environment=environment,
        force=force,
        on_rendered=start_loads,
    )
