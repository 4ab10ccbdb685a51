"""Apply a promotion plan: run exactly its steps, in order, reporting progress."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from typing import Any

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.promote import phases
from mwaa_elt.promote.manifest import Written
from mwaa_elt.promote.plan import (
    DeleteDag,
    Plan,
    Step,
    UploadBundle,
    UploadPack,
    UploadScript,
    UploadTemplates,
    WriteDag,
    WriteManifest,
)
from mwaa_elt.promote.store import RENDERED_HASH_METADATA, StageStore

# Called after each step completes with (steps completed so far; number of steps; the step).
Progress = Callable[[int, int, Step], None]


@dataclass
class ApplyResult:
    """What applying a plan wrote: the shape of `promote --json`."""

    plan: Plan
    uploaded: int = 0  # DAG files and scripts written (not bundles, not the manifest)
    deleted: int = 0
    skipped: int = 0  # content-addressed objects already present
    written: dict[str, Written] = field(default_factory=dict)  # each DAG file S3 wrote
    manifest_etag: str | None = None

    @property
    def unchanged(self) -> int:
        """Pipelines the plan left as they were."""
        return self.plan.count("unchanged")

    def to_dict(self) -> dict[str, Any]:
        """`{"stage", "from", "uploaded", "deleted", "unchanged", "pipelines": [...]}`."""
        return {
            "stage": self.plan.stage,
            "from": self.plan.source,
            "uploaded": self.uploaded,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "pipelines": [change.to_dict() for change in self.plan.changes],
        }


# Steps of one phase are independent and run in parallel; phases run in order, so scripts and
# bundles are in place before any DAG that uses them, and the manifest is written last.
WORKERS = 16


_PHASE_POINTS = {0: "uploaded", 1: "dags-written", 2: "manifest-written"}


def _phase(step: Step) -> int:
    if isinstance(step, UploadScript | UploadBundle | UploadPack | UploadTemplates):
        return 0
    return 1 if isinstance(step, WriteDag | DeleteDag) else 2


def apply_plan(
    store: StageStore,
    plan: Plan,
    progress: Progress | None = None,
    *,
    guard: Callable[[], None] | None = None,
) -> ApplyResult:
    """Execute `plan`'s steps phase by phase against the stage's bucket; the manifest last.

    `guard` runs before each step and may raise to stop (the stage lock was lost). Any stop —
    an error, a guard, Ctrl-C — says which DAG files are live but not yet in the manifest;
    running the same command again completes the work.
    """
    if store.stage.name != plan.stage:
        raise ValueError(f"plan for stage {plan.stage} applied to stage {store.stage.name}")
    result = ApplyResult(plan)
    done: list[Step] = []

    def run(step: Step) -> Effect:
        if guard is not None:
            guard()
        return _run(store, step, result.written)

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mwaa-elt-apply") as pool:
        for phase in sorted({_phase(step) for step in plan.steps}):
            steps = [step for step in plan.steps if _phase(step) == phase]
            futures = {pool.submit(run, step): step for step in steps}
            try:
                for future in as_completed(futures):
                    _count(result, future.result())
                    done.append(futures[future])
                    if isinstance(futures[future], WriteDag):
                        phases.reached("dag-written")
                    if progress is not None:
                        progress(len(done), len(plan.steps), futures[future])
                phases.reached(_PHASE_POINTS[phase])
            except BaseException as error:
                _settle(futures, done)  # nothing new starts once the run is stopping
                if isinstance(error, MwaaEltError):
                    raise type(error)([*error.messages, _stopped(plan, done)]) from None
                if isinstance(error, KeyboardInterrupt):
                    raise ConfigError(["interrupted", _stopped(plan, done)]) from None
                raise
    return result


def _settle(futures: dict[Future[Effect], Step], done: list[Step]) -> None:
    """Cancel what has not started, wait for what has, and count what completed."""
    for future in futures:
        future.cancel()
    wait(futures)
    for future, step in futures.items():
        if step not in done and not future.cancelled() and future.exception() is None:
            done.append(step)


@dataclass(frozen=True)
class Effect:
    """What one step did to the bucket."""

    uploaded: int = 0
    skipped: int = 0
    deleted: int = 0
    manifest_etag: str | None = None


def _count(result: ApplyResult, effect: Effect) -> None:
    result.uploaded += effect.uploaded
    result.skipped += effect.skipped
    result.deleted += effect.deleted
    if effect.manifest_etag is not None:
        result.manifest_etag = effect.manifest_etag


def _stopped(plan: Plan, done: list[Step]) -> str:
    """The stage's state after the `done` steps of `plan` completed, and what to do."""
    wrote = sorted(step.key for step in done if isinstance(step, WriteDag))
    deleted = sorted(step.key for step in done if isinstance(step, DeleteDag))
    what = "rollback" if plan.source == "rollback" else "promotion"
    if not wrote and not deleted:
        return (
            f"stage {plan.stage} is as it was: no DAG file changed and the manifest records what "
            f"is live; run the same command again to retry the {what}"
        )
    changes = [f"wrote {_keys(wrote)}"] if wrote else []
    changes += [f"deleted {_keys(deleted)}"] if deleted else []
    return (
        f"stage {plan.stage} is part-way: this {what} already {' and '.join(changes)}, which the "
        f"manifest does not record yet; run the same command again to complete the {what} "
        f"(`mwaa-elt status --stage {plan.stage}` shows where it stopped)"
    )


def _keys(keys: list[str], shown: int = 5) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _run(store: StageStore, step: Step, written: dict[str, Written]) -> Effect:
    match step:
        case UploadScript(key=key, body=body):
            written = store.put_if_absent(key, body)
            return Effect(uploaded=int(written), skipped=int(not written))
        case (
            UploadBundle(key=key, body=body)
            | UploadPack(key=key, body=body)
            | UploadTemplates(key=key, body=body)
        ):
            return Effect(skipped=int(not store.put_if_absent(key, body)))
        case WriteDag(pipeline=pipeline, key=key, body=body, rendered_hash=rendered_hash):
            written[pipeline] = store.put(
                key,
                body,
                metadata={RENDERED_HASH_METADATA: rendered_hash},
                content_type="text/x-python",
                state="the object holds its previous file or the new one, never part of one",
            )
            return Effect(uploaded=1)
        case DeleteDag(key=key):
            store.delete(key)
            return Effect(deleted=1)
        case WriteManifest(expected_etag=etag):
            return Effect(manifest_etag=store.write_manifest(step.written(written), etag))
