"""Blue/green cutover of a stage: switch the pipelines from the old environment to the new one,
then tell the user the stack change that retires the old one.

A stage gets a second ("green") environment from its stack config (branch cutover's `cutover:`
setting); promotion writes every pipeline to both, paused in the new one. `switch` pauses the
pipelines' DAGs in the old environment, backs up its metadata and restores it into the new one,
unpauses there the DAGs that ran in the old one, verifies, and records the switch in the
stage's bucket (`.mwaa-elt/cutover.json`); `finish` refuses until that record exists, then
prints the stack file change that retires the old environment (`mwaa_elt.stage.retire`), and
says "done" once the stack serves from green and the old environment is gone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.lifecycle.airflow_api import AirflowApi, AirflowTarget
from mwaa_elt.lifecycle.metadata import (
    BackupBucket,
    execute_backup,
    execute_restore,
    pause_states,
    plan_backup,
    plan_restore,
    read_snapshot,
    set_paused,
)
from mwaa_elt.stage import NAMESPACE, Stage
from mwaa_elt.stage.retire import RetireChange, retire_blue_change


@dataclass(frozen=True)
class GreenEnvironment:
    """The stage's second environment while a cutover runs: what `switch` needs of it, as the
    stage's `cutover:` block derives it (`mwaa_elt.stage.green.green_stage`)."""

    name: str
    dags_prefix: str
    airflow_version: str

    @property
    def major(self) -> int:
        return int(self.airflow_version.split(".")[0])


def green_environment(stage: Stage) -> GreenEnvironment:
    """The stage's green environment; ConfigError naming the setting when it has none."""
    from mwaa_elt.stage.green import green_stage

    green = green_stage(stage)
    if green is None and stage.config.serving_environment == "green":
        raise ConfigError(
            f"stacks/Pulumi.{stage.name}.yaml: {NAMESPACE}:servingEnvironment: stage "
            f"{stage.name} already runs in its former green environment {stage.environment_name} "
            "(blue was retired); a further cutover from it is not supported — upgrade it in "
            "place (mwaa-elt upgrade plan) instead"
        )
    if green is None:
        raise ConfigError(
            f"stacks/Pulumi.{stage.name}.yaml: mwaa-elt:cutover: stage {stage.name} has no "
            "second environment; expected `mwaa-elt:cutover: {airflowVersion: <version>, "
            "environmentClass: <class>}`; "
            f"add it and run `pulumi up --stack {stage.name}` first"
        )
    return GreenEnvironment(
        name=green.environment_name,
        dags_prefix=green.dags_prefix,
        airflow_version=green.airflow.version,
    )


def record_key(stage: Stage) -> str:
    """Where the switch is recorded in the stage's bucket."""
    return stage.cutover_record_key


class SwitchRecord(BaseModel):
    """The record `switch` writes last and `finish` requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str
    old_environment: str
    new_environment: str
    new_airflow_version: str
    backup_id: str
    pipelines: tuple[str, ...]
    unpaused: tuple[str, ...]
    switched_at: str


# -- switch: plan, explainer, executor ---------------------------------------------------------


@dataclass(frozen=True)
class RequireParsed:
    """The new environment has parsed every live pipeline's DAG (promotion wrote them paused)."""

    environment: str
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class PauseOld:
    """Pause the pipelines' DAGs that run in the old environment, so only one runs them."""

    environment: str
    dag_ids: tuple[str, ...]


@dataclass(frozen=True)
class BackupOld:
    """Back up the old environment's metadata into the stage's bucket."""

    environment: str
    backup_id: str


@dataclass(frozen=True)
class RestoreNew:
    """Restore that backup into the new environment (pipeline pause states excepted)."""

    environment: str
    backup_id: str


@dataclass(frozen=True)
class UnpauseNew:
    """Unpause in the new environment the DAGs that ran in the old one."""

    environment: str
    dag_ids: tuple[str, ...]


@dataclass(frozen=True)
class VerifyNew:
    """The new environment reports every pipeline parsed, in its intended pause state, without
    an import error."""

    environment: str
    unpaused: tuple[str, ...]
    paused: tuple[str, ...]


@dataclass(frozen=True)
class RecordSwitch:
    """Record the switch in the stage's bucket, so that `cutover finish` may proceed."""

    key: str


SwitchStep = (
    RequireParsed | PauseOld | BackupOld | RestoreNew | UnpauseNew | VerifyNew | RecordSwitch
)


@dataclass(frozen=True)
class SwitchPlan:
    """Switching a stage's pipelines from its old environment to its new one."""

    stage: str
    old: AirflowTarget
    new: AirflowTarget
    new_version: str
    pipelines: tuple[str, ...]
    steps: tuple[SwitchStep, ...]


def plan_switch(
    stage: Stage,
    green: GreenEnvironment,
    pipelines: Sequence[str],
    old_pauses: Mapping[str, bool],
    backup_id: str,
    *,
    old_major: int | None = None,
) -> SwitchPlan:
    """The switch of `pipelines`, given the old environment's pause states; no side effects.

    A pipeline paused in the old environment stays paused in the new one."""
    if not pipelines:
        raise ConfigError(
            f"nothing is live in stage {stage.name}: no pipeline to switch; promote first"
        )
    names = tuple(sorted(pipelines))
    missing = [name for name in names if name not in old_pauses]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)}: live in stage {stage.name} but not parsed by "
            f"{stage.environment_name}; fix the old environment first (mwaa-elt status) — "
            "nothing was changed"
        )
    running = tuple(name for name in names if not old_pauses[name])
    paused = tuple(name for name in names if old_pauses[name])
    old = AirflowTarget(stage.environment_name, stage.region, old_major or stage.airflow.major)
    new = AirflowTarget(green.name, stage.region, green.major)
    steps: tuple[SwitchStep, ...] = (
        RequireParsed(new.environment, names),
        PauseOld(old.environment, running),
        BackupOld(old.environment, backup_id),
        RestoreNew(new.environment, backup_id),
        UnpauseNew(new.environment, running),
        VerifyNew(new.environment, running, paused),
        RecordSwitch(record_key(stage)),
    )
    return SwitchPlan(stage.name, old, new, green.airflow_version, names, steps)


def describe(step: SwitchStep) -> str:
    """One line saying what `step` does."""
    if isinstance(step, RequireParsed):
        return f"require {step.environment} to have parsed {len(step.pipelines)} pipeline(s)"
    if isinstance(step, PauseOld):
        return f"pause in {step.environment}: {', '.join(step.dag_ids) or 'none running'}"
    if isinstance(step, BackupOld):
        return f"back up metadata of {step.environment} as {step.backup_id}"
    if isinstance(step, RestoreNew):
        return f"restore {step.backup_id} into {step.environment}"
    if isinstance(step, UnpauseNew):
        return f"unpause in {step.environment}: {', '.join(step.dag_ids) or 'none'}"
    if isinstance(step, VerifyNew):
        return f"verify {step.environment}: parsed, unpaused as planned, no import error"
    return f"record the switch ({step.key})"


def explain_switch(plan: SwitchPlan) -> list[str]:
    """The switch plan, one line per step."""
    lines = [
        f"switch stage {plan.stage} from {plan.old.environment} to {plan.new.environment} "
        f"(Airflow {plan.new_version}):"
    ]
    lines += [f"  {index}. {describe(step)}" for index, step in enumerate(plan.steps, 1)]
    return lines


@dataclass
class SwitchResult:
    """The steps a switch completed."""

    plan: SwitchPlan
    done: list[str] = field(default_factory=list)
    record: SwitchRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result for `--json`."""
        return {
            "stage": self.plan.stage,
            "old_environment": self.plan.old.environment,
            "new_environment": self.plan.new.environment,
            "done": self.done,
            "record": None if self.record is None else self.record.model_dump(),
        }


class SwitchStopped(MwaaEltError):
    """A switch stopped at a step; its exit code is that step's."""

    def __init__(self, messages: list[str], exit_code: int) -> None:
        super().__init__(messages)
        self.exit_code = exit_code


def execute_switch(
    plan: SwitchPlan,
    mwaa: Any,
    bucket: BackupBucket,
    *,
    stage: Stage,
    created_by: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[int, int, str], None] | None = None,
) -> SwitchResult:
    """Apply the switch step by step; at the first failure stop, naming what was done, what
    was not, and how to undo it."""
    old, new = AirflowApi(plan.old, mwaa), AirflowApi(plan.new, mwaa)
    result = SwitchResult(plan)
    for index, step in enumerate(plan.steps):
        if progress is not None:
            progress(index + 1, len(plan.steps), describe(step))
        try:
            _switch_step(plan, step, old, new, bucket, stage, created_by, now, result)
        except MwaaEltError as error:
            paused = next(s for s in plan.steps if isinstance(s, PauseOld))
            messages = [
                f"cutover switch of {plan.stage} stopped at step {index + 1}/{len(plan.steps)} "
                f"({describe(step)}):",
                *(f"  {m}" for m in error.messages),
                f"done: {'; '.join(result.done) or 'nothing'}",
                f"not done: {'; '.join(describe(s) for s in plan.steps[index:])}",
            ]
            if index > plan.steps.index(paused) and paused.dag_ids:
                messages.append(
                    f"the pipelines are paused in {plan.old.environment}; fix the cause and run "
                    f"this again, or unpause them there ({', '.join(paused.dag_ids)}) to go back"
                )
            raise SwitchStopped(messages, error.exit_code) from None
        result.done.append(describe(step))
    return result


def _switch_step(
    plan: SwitchPlan,
    step: SwitchStep,
    old: AirflowApi,
    new: AirflowApi,
    bucket: BackupBucket,
    stage: Stage,
    created_by: str | None,
    now: Callable[[], datetime],
    result: SwitchResult,
) -> None:
    if isinstance(step, RequireParsed):
        parsed = pause_states(new)
        missing = [name for name in step.pipelines if name not in parsed]
        if missing:
            raise ConfigError(
                f"{step.environment} has not parsed {', '.join(missing)}; promote into "
                f"{plan.stage} (it writes both environments while the cutover exists) and "
                "wait for Airflow to parse them — nothing was changed"
            )
    elif isinstance(step, PauseOld):
        set_paused(old, step.dag_ids, True)
    elif isinstance(step, BackupOld):
        backup = plan_backup(stage, step.backup_id, target=plan.old)
        execute_backup(backup, old, bucket, created_by=created_by, now=now)
    elif isinstance(step, RestoreNew):
        from mwaa_elt.lifecycle.metadata import load_backup

        _, snapshot = load_backup(bucket, step.backup_id)
        others = [d.dag_id for d in snapshot.dags if d.dag_id not in plan.pipelines]
        restore = plan_restore(
            plan.stage, step.environment, step.backup_id, snapshot, read_snapshot(new), dags=others
        )
        execute_restore(restore, new)
    elif isinstance(step, UnpauseNew):
        set_paused(new, step.dag_ids, False)
    elif isinstance(step, VerifyNew):
        _verify(new, step)
    else:
        record = SwitchRecord(
            stage=plan.stage,
            old_environment=plan.old.environment,
            new_environment=plan.new.environment,
            new_airflow_version=plan.new_version,
            backup_id=next(s.backup_id for s in plan.steps if isinstance(s, BackupOld)),
            pipelines=plan.pipelines,
            unpaused=next(s.dag_ids for s in plan.steps if isinstance(s, UnpauseNew)),
            switched_at=now().isoformat(timespec="seconds"),
        )
        body = (json.dumps(record.model_dump(), indent=2, sort_keys=True) + "\n").encode()
        bucket.put(step.key, body, state="the switch is done but not recorded; re-run switch")
        result.record = record


def _verify(new: AirflowApi, step: VerifyNew) -> None:
    states = pause_states(new)
    problems = []
    for name in step.unpaused:
        if states.get(name) is not False:
            problems.append(f"{name}: expected unpaused in {step.environment}, it is not")
    for name in step.paused:
        if states.get(name) is not True:
            problems.append(f"{name}: expected paused in {step.environment} (as in the old one)")
    wanted = {f"{name}.py": name for name in (*step.unpaused, *step.paused)}
    for item in new.collection("/importErrors", "import_errors"):
        name = wanted.get(PurePosixPath(str(item.get("filename", ""))).name)
        if name is not None:
            trace = str(item.get("stack_trace", "")).strip().splitlines()
            problems.append(f"{name}: import error in {step.environment}: {trace[-1:] or ''}")
    if problems:
        raise ConfigError(problems)


# -- finish ------------------------------------------------------------------------------------


def load_switch(bucket: BackupBucket) -> SwitchRecord | None:
    """The recorded switch of the stage, or None when it has not happened."""
    key = record_key(bucket.stage)
    body = bucket.get(key)
    if body is None:
        return None
    try:
        return SwitchRecord.model_validate_json(body)
    except ValidationError:
        raise ConfigError(
            f"{bucket.uri(key)}: not an mwaa-elt cutover record; it was edited by hand — "
            "run `mwaa-elt cutover switch` again"
        ) from None


@dataclass(frozen=True)
class FinishReport:
    """Where a switched stage stands: `retire` (the stack still has the cutover block; `change`
    is the stack file edit that retires blue), `apply` (the stack retires blue, whose
    environment still exists until `pulumi up`), or `done`."""

    stage: str
    state: Literal["retire", "apply", "done"]
    lines: tuple[str, ...]
    change: RetireChange | None = None

    def to_dict(self) -> dict[str, Any]:
        """For `--json`."""
        return {
            "stage": self.stage,
            "switched": True,
            "state": self.state,
            "instructions": list(self.lines),
            "stack_file": None if self.change is None else self.change.path,
            "diff": None if self.change is None else self.change.diff,
        }


def finish_cutover(
    stage: Stage,
    record: SwitchRecord | None,
    stack_text: str,
    stack_path: str,
    old_environment_status: str | None = None,
) -> FinishReport:
    """What retiring the old environment takes now: the stack change, `pulumi up`, or nothing.

    `old_environment_status` is MWAA's status of the recorded old environment (None: it no
    longer exists), read once the stack retires it. ConfigError before the switch, and when the
    stack contradicts the record."""
    if record is None:
        raise ConfigError(
            f"stage {stage.name}: the cutover switch has not happened (no "
            f"{record_key(stage)} in s3://{stage.source_bucket}); run `mwaa-elt cutover switch "
            f"--stage {stage.name}` first — the old environment still runs the pipelines"
        )
    where = (
        f"the pipelines of {stage.name} run in {record.new_environment} (Airflow "
        f"{record.new_airflow_version}) since {record.switched_at}; backup {record.backup_id} "
        f"holds the metadata of {record.old_environment}"
    )
    if stage.config.cutover is not None:
        change = retire_blue_change(stage, stack_text, stack_path)
        return FinishReport(
            stage.name,
            "retire",
            (
                where,
                f"to retire {record.old_environment}, change {stack_path} as below (the "
                f"cutover block's settings become the stage's own, `servingEnvironment: green` "
                f"makes {record.new_environment} the stage's environment under its present "
                "names), then run `pulumi up`: it deletes the old environment, its files, log "
                f"groups and alarms, and leaves {record.new_environment} as it is",
                *_unprotect(stage, record),
            ),
            change,
        )
    if stage.environment_name != record.new_environment:
        raise ConfigError(
            f"{stack_path}: {record_key(stage)} records the switch of {stage.name} to "
            f"{record.new_environment}, but the stack makes {stage.environment_name} the "
            f"stage's own environment and declares no other, so `pulumi up` deletes "
            f"{record.new_environment}, the one running the pipelines; restore the cutover "
            f"block, or set `{NAMESPACE}:servingEnvironment: green` as `mwaa-elt cutover finish` "
            "printed"
        )
    if old_environment_status is not None:
        return FinishReport(
            stage.name,
            "apply",
            (
                where,
                f"{stack_path} retires {record.old_environment}, which still exists "
                f"({old_environment_status}): run `pulumi up --stack {stage.name}` to delete it",
                *_unprotect(stage, record),
            ),
        )
    return FinishReport(
        stage.name,
        "done",
        (
            where,
            f"done: {record.old_environment} is retired; {record.new_environment} is the "
            f"stage's own environment (`{NAMESPACE}:servingEnvironment: green`): promotion, "
            "status, rollback and health use it alone",
        ),
    )


def _unprotect(stage: Stage, record: SwitchRecord) -> tuple[str, ...]:
    if not stage.production:
        return ()
    return (
        f"{stage.name} is production: {record.old_environment}'s environment and log groups are "
        "protected, so `pulumi up` refuses to delete them until you run `pulumi state "
        f"unprotect --stack {stage.name} <urn>` for `airflow-environment` and each "
        f"`monitoring-logs-*` (`pulumi stack --stack {stage.name} --show-urns` lists the URNs)",
    )
