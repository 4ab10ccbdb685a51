"""The in-place upgrade of a stage's environment, sequenced around `pulumi up`.

The Airflow version lives in `stacks/Pulumi.<stage>.yaml`, so `pulumi up` performs MWAA's
environment update; `mwaa-elt upgrade apply` sequences the rest so that the environment never
runs, unnoticed, DAG files written for the other Airflow line: the stack file must already name
the target version, the metadata is backed up, MWAA must report the environment AVAILABLE on the
target version, every live pipeline is re-rendered from its recorded release for the new line and
promoted (gates, ordered writes, manifest recording the line), and Airflow must then report no
import error for any of them. The first step that fails stops the sequence and says what was done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES
from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.lifecycle.airflow_api import EnvironmentState, read_environment
from mwaa_elt.lifecycle.metadata import BackupRecord
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.stage import Stage

UPDATE_IN_PROGRESS = frozenset(
    {"UPDATING", "CREATING_SNAPSHOT", "CREATING", "PENDING", "MAINTENANCE"}
)
UPDATE_FAILED = frozenset({"UPDATE_FAILED", "ROLLING_BACK", "CREATE_FAILED", "UNAVAILABLE"})


@dataclass(frozen=True)
class BackupMetadata:
    """Back up the environment's Airflow metadata before anything else happens."""

    backup_id: str


@dataclass(frozen=True)
class WaitForVersion:
    """Wait until MWAA reports the environment AVAILABLE on the target Airflow version."""

    environment: str
    version: str
    timeout_seconds: float


@dataclass(frozen=True)
class RepromoteLive:
    """Re-render every live pipeline from its recorded release for the new line and promote it."""

    pipelines: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class CheckImportErrors:
    """Airflow reports no import error for any live pipeline's DAG file."""

    pipelines: tuple[str, ...]


UpgradeStep = BackupMetadata | WaitForVersion | RepromoteLive | CheckImportErrors


@dataclass(frozen=True)
class UpgradePlan:
    """The sequence upgrading one stage in place to `version`."""

    stage: str
    environment: str
    version: str
    rendered_for: Mapping[str, str | None]  # live pipeline → the version its DAG was rendered for
    steps: tuple[UpgradeStep, ...]


def plan_upgrade(
    stage: Stage,
    version: str,
    manifest: Manifest,
    backup_id: str,
    *,
    timeout_seconds: float,
) -> UpgradePlan:
    """The upgrade sequence; refuses unless the stack file already names `version`. This has no
    side effects."""
    if version not in MWAA_AIRFLOW_RELEASES:
        raise ConfigError(
            f"--to {version}: MWAA offers no Airflow {version}; expected one of "
            f"{', '.join(MWAA_AIRFLOW_RELEASES)}"
        )
    if stage.airflow.version != version:
        raise ConfigError(
            f"stacks/Pulumi.{stage.name}.yaml: mwaa-elt:airflowVersion is "
            f"{stage.airflow.version}, not {version}; expected the target version there; set "
            f"it to {version}, run `pulumi up --stack {stage.name}`, then run this again "
            "(nothing was changed)"
        )
    pipelines = tuple(sorted(manifest.pipelines))
    rendered_for = {name: manifest.pipelines[name].airflow_version for name in pipelines}
    steps: list[UpgradeStep] = [
        BackupMetadata(backup_id),
        WaitForVersion(stage.environment_name, version, timeout_seconds),
    ]
    if pipelines:
        steps += [RepromoteLive(pipelines, version), CheckImportErrors(pipelines)]
    return UpgradePlan(stage.name, stage.environment_name, version, rendered_for, tuple(steps))


def describe(step: UpgradeStep) -> str:
    """One line saying what `step` does."""
    if isinstance(step, BackupMetadata):
        return f"back up Airflow metadata as backup {step.backup_id}"
    if isinstance(step, WaitForVersion):
        return (
            f"wait until {step.environment} is AVAILABLE on Airflow {step.version} "
            f"(up to {step.timeout_seconds:g} s)"
        )
    if isinstance(step, RepromoteLive):
        return (
            f"re-render and promote {len(step.pipelines)} live pipeline(s) for Airflow "
            f"{step.version}: {', '.join(step.pipelines)}"
        )
    return f"check Airflow reports no import error for: {', '.join(step.pipelines)}"


def explain_upgrade(plan: UpgradePlan) -> list[str]:
    """The upgrade plan: the steps in order, then the line each live DAG is rendered for now."""
    lines = [f"upgrade {plan.stage} ({plan.environment}) in place to Airflow {plan.version}:"]
    lines += [f"  {index}. {describe(step)}" for index, step in enumerate(plan.steps, 1)]
    if not plan.rendered_for:
        lines.append("nothing is live in the stage: no pipeline to re-render")
    for name, version in sorted(plan.rendered_for.items()):
        lines.append(f"  {name}: rendered for Airflow {version or 'unrecorded'} now")
    return lines


class UpgradeActions(Protocol):
    """What each step does against AWS; each returns one line saying what it did."""

    def backup(self, step: BackupMetadata) -> str: ...

    def wait(self, step: WaitForVersion) -> str: ...

    def repromote(self, step: RepromoteLive) -> str: ...

    def check_import_errors(self, step: CheckImportErrors) -> str: ...


@dataclass
class UpgradeResult:
    """The steps an upgrade completed, each with what it did."""

    plan: UpgradePlan
    done: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result for `--json`."""
        return {
            "stage": self.plan.stage,
            "version": self.plan.version,
            "done": [{"step": step, "result": said} for step, said in self.done],
        }


class UpgradeStopped(MwaaEltError):
    """An upgrade stopped at a step; its exit code is that step's."""

    def __init__(self, messages: list[str], exit_code: int) -> None:
        super().__init__(messages)
        self.exit_code = exit_code


def execute_upgrade(
    plan: UpgradePlan,
    actions: UpgradeActions,
    progress: Callable[[int, int, str], None] | None = None,
) -> UpgradeResult:
    """Run the steps in order; at the first failure stop, naming what was done and what not."""
    result = UpgradeResult(plan)
    for index, step in enumerate(plan.steps):
        if progress is not None:
            progress(index + 1, len(plan.steps), describe(step))
        try:
            said = _run(actions, step)
        except MwaaEltError as error:
            backups = [s.backup_id for s in plan.steps if isinstance(s, BackupMetadata)]
            backed_up = any(isinstance(s, BackupMetadata) for s in plan.steps[:index])
            left = [describe(s) for s in plan.steps[index + 1 :]]
            messages = [
                f"upgrade of {plan.stage} to Airflow {plan.version} stopped at step "
                f"{index + 1}/{len(plan.steps)} ({describe(step)}):",
                *(f"  {message}" for message in error.messages),
                f"done: {'; '.join(s for s, _ in result.done) or 'nothing'}",
            ]
            if left:
                messages.append(f"not done: {'; '.join(left)}")
            if backed_up and backups:
                messages.append(
                    f"the metadata is in backup {backups[0]}; fix the cause and run this again, "
                    "or roll back as docs/upgrades.md describes"
                )
            raise UpgradeStopped(messages, error.exit_code) from None
        result.done.append((describe(step), said))
    return result


def _run(actions: UpgradeActions, step: UpgradeStep) -> str:
    if isinstance(step, BackupMetadata):
        return actions.backup(step)
    if isinstance(step, WaitForVersion):
        return actions.wait(step)
    if isinstance(step, RepromoteLive):
        return actions.repromote(step)
    return actions.check_import_errors(step)


# -- the steps against AWS ---------------------------------------------------------------------


def wait_for_version(
    read: Callable[[], EnvironmentState],
    step: WaitForVersion,
    *,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    seen: Callable[[EnvironmentState, float], None] | None = None,
) -> EnvironmentState:
    """Poll until the environment is AVAILABLE on `step.version`; ConfigError when its update
    failed, or when the timeout passes first."""
    start = clock()
    while True:
        state = read()
        waited = clock() - start
        if seen is not None:
            seen(state, waited)
        if state.status == "AVAILABLE" and state.version == step.version:
            return state
        failed = state.status in UPDATE_FAILED or (
            state.status == "AVAILABLE" and state.last_update_status == "FAILED"
        )
        if failed:
            why = f": {state.last_update_error}" if state.last_update_error else ""
            raise ConfigError(
                f"MWAA environment {step.environment} is {state.status} on Airflow "
                f"{state.version or '?'}, its last update {state.last_update_status or 'failed'}"
                f"{why}; nothing was promoted — fix the cause and run `pulumi up` again"
            )
        if waited >= step.timeout_seconds:
            raise ConfigError(
                f"MWAA environment {step.environment} is still {state.status} on Airflow "
                f"{state.version or '?'} after {waited:.0f} s, not AVAILABLE on "
                f"{step.version}; nothing was promoted — has `pulumi up --stack` run? Run "
                "this again once it is (--timeout waits longer)"
            )
        sleep(min(poll_seconds, max(0.0, step.timeout_seconds - waited)))


def failing_imports(errors: Sequence[tuple[str, str]], pipelines: Sequence[str]) -> dict[str, str]:
    """Import errors (filename, stack trace) of the live pipelines' DAG files, by pipeline."""
    wanted = {f"{name}.py": name for name in pipelines}
    found: dict[str, str] = {}
    for filename, trace in errors:
        name = wanted.get(PurePosixPath(filename).name)
        if name is not None:
            found.setdefault(name, trace)
    return found


@dataclass
class LiveUpgrade:
    """The upgrade's steps against the stage's bucket and environment."""

    project_root: Path
    stacks_dir: Path
    environment_dir: Path
    stages: Mapping[str, Stage]
    stage: Stage
    mwaa: Any  # boto3 MWAA client
    s3: Any  # boto3 S3 client
    identity: Any  # promote.identity.Identity
    poll_seconds: float = 30.0
    on_wait: Callable[[EnvironmentState, float], None] | None = None
    backup_record: BackupRecord | None = None

    def backup(self, step: BackupMetadata) -> str:
        """As `mwaa-elt backup` does it: mwaa-dr's DAG run on a 2.x environment with the DR
        DAGs live (run history carried), Airflow's REST API otherwise."""
        from mwaa_elt.lifecycle import mwaa_dr
        from mwaa_elt.lifecycle.airflow_api import AirflowApi, live_target
        from mwaa_elt.lifecycle.metadata import BackupBucket, execute_backup, plan_backup

        # Before `pulumi up` finished, the environment may still run the previous version.
        api_target, running = live_target(self.stage.environment_name, self.stage.region, self.mwaa)
        api = AirflowApi(api_target, self.mwaa)
        bucket = BackupBucket(self.stage, self.s3)
        route = mwaa_dr.backup_route(self.stage, api, step.backup_id, airflow_version=running)
        if route.dr_plan is not None:
            self.backup_record = mwaa_dr.execute_backup(
                route.dr_plan, mwaa_dr.RunWatcher(api), bucket, created_by=self.identity.promoted_by
            )
            tables = len(self.backup_record.manifest.parts)
            return f"backup {step.backup_id} (mwaa-dr, {tables} tables) at {self.backup_record.uri}"
        plan = plan_backup(self.stage, step.backup_id, target=api_target, airflow_version=running)
        self.backup_record = execute_backup(plan, api, bucket, created_by=self.identity.promoted_by)
        counts = ", ".join(f"{n} {p}" for p, n in self.backup_record.manifest.counts.items())
        why = f"; {route.note}" if route.note else ""
        return f"backup {step.backup_id} at {self.backup_record.uri} ({counts}){why}"

    def wait(self, step: WaitForVersion) -> str:
        state = wait_for_version(
            lambda: read_environment(self.mwaa, step.environment, self.stage.region),
            step,
            poll_seconds=self.poll_seconds,
            seen=self.on_wait,
        )
        return f"{step.environment} is {state.status} on Airflow {state.version}"

    def repromote(self, step: RepromoteLive) -> str:
        from mwaa_elt.promote.builds import from_stage
        from mwaa_elt.promote.execute import Verify, execute
        from mwaa_elt.promote.gates import dagbag_gate, requirements_gate
        from mwaa_elt.promote.inputs import environment_digest
        from mwaa_elt.promote.lock import lock_owner
        from mwaa_elt.promote.mwaa import MwaaEnvironment
        from mwaa_elt.promote.plan import build_plan
        from mwaa_elt.promote.store import StageStore

        store = StageStore(self.stage, self.s3)
        manifest, etag = store.load_manifest()
        digest = environment_digest(self.stage, self.stacks_dir, self.project_root)
        # Every live pipeline is rendered anew: the recorded inputs were digested for the
        # previous line, and rendering is what proves the new one.
        prepared = from_stage(
            self.stages,
            store,
            self.stage,
            None,
            target_manifest=manifest,
            environment=digest,
            force=set(manifest.pipelines),
        )
        manifest = store.load_histories(manifest, [b.name for b in prepared.builds])
        plan = build_plan(
            self.stage,
            prepared.builds,
            manifest,
            etag,
            source=self.stage.name,
            identity=self.identity,
            unchanged=prepared.unchanged,
        )
        written = plan.changed()
        requirements_gate(
            prepared.render, self.stage, self.environment_dir / "requirements.txt", written
        )
        if written:
            dagbag_gate(prepared.render, self.stage, self.project_root, written)
        verify = Verify(
            MwaaEnvironment(self.stage, self.mwaa),
            timeout_seconds=self.stage.config.gates.import_error_timeout_seconds,
        )
        outcome = execute(
            store, plan, owner=lock_owner(self.identity.promoted_by), identity=self.identity,
            verify=verify,
        )  # fmt: skip
        verification = outcome.verification
        if verification is not None and verification.import_errors:
            raise ConfigError(
                [
                    f"{name}: import error under Airflow {step.version}: {trace.strip()}"
                    for name, trace in sorted(verification.import_errors.items())
                ]
                + ["the new DAG files are live but fail to import; roll back (docs/upgrades.md)"]
            )
        return f"{len(written)} DAG file(s) rewritten for Airflow {step.version}, " + (
            f"{len(step.pipelines) - len(written)} render the same on both lines"
        )

    def check_import_errors(self, step: CheckImportErrors) -> str:
        from mwaa_elt.promote.mwaa import MwaaEnvironment

        errors = MwaaEnvironment(self.stage, self.mwaa).import_errors()
        failing = failing_imports([(e.filename, e.stack_trace) for e in errors], step.pipelines)
        if failing:
            raise ConfigError(
                [
                    f"{name}: import error: {trace.strip()}"
                    for name, trace in sorted(failing.items())
                ]
                + [
                    "Airflow cannot load these DAG files on the new line; "
                    "roll back (docs/upgrades.md)"
                ]
            )
        return f"no import error for {len(step.pipelines)} live pipeline(s)"
