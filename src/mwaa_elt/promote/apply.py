"""Apply a promotion plan: run exactly its steps, in order, reporting progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.promote.plan import (
    DeleteDag,
    Plan,
    Step,
    UploadBundle,
    UploadScript,
    UploadTemplates,
    WriteDag,
    WriteManifest,
)
from mwaa_elt.promote.store import RENDERED_HASH_METADATA, StageStore

# Called after each step with (index of the step, 1-based; number of steps; the step).
Progress = Callable[[int, int, Step], None]


@dataclass
class ApplyResult:
    """What applying a plan wrote: the shape of `promote --json`."""

    plan: Plan
    uploaded: int = 0  # DAG files and scripts written (not bundles, not the manifest)
    deleted: int = 0
    skipped: int = 0  # content-addressed objects already present
    version_ids: dict[str, str | None] = field(default_factory=dict)
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


def apply_plan(
    store: StageStore,
    plan: Plan,
    progress: Progress | None = None,
    *,
    guard: Callable[[], None] | None = None,
) -> ApplyResult:
    """Execute `plan`'s steps in order against the stage's bucket; the manifest is written last.

    `guard` runs before each step and may raise to stop (the stage lock was lost). Any stop —
    an error, a guard, Ctrl-C — says which DAG files are live but not yet in the manifest;
    running the same command again completes the work.
    """
    if store.stage.name != plan.stage:
        raise ValueError(f"plan for stage {plan.stage} applied to stage {store.stage.name}")
    result = ApplyResult(plan)
    total = len(plan.steps)
    for index, step in enumerate(plan.steps, start=1):
        try:
            if guard is not None:
                guard()
            _run(store, step, result)
        except MwaaEltError as error:
            raise type(error)([*error.messages, _stopped_at(plan, index)]) from None
        except KeyboardInterrupt:
            raise ConfigError(["interrupted", _stopped_at(plan, index)]) from None
        if progress is not None:
            progress(index, total, step)
    return result


def _stopped_at(plan: Plan, failed: int) -> str:
    """The stage's state when step `failed` (1-based) of `plan` failed, and what to do."""
    done = plan.steps[: failed - 1]
    wrote = [step.key for step in done if isinstance(step, WriteDag)]
    deleted = [step.key for step in done if isinstance(step, DeleteDag)]
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


def _run(store: StageStore, step: Step, result: ApplyResult) -> None:
    match step:
        case UploadScript(key=key, body=body):
            if store.put_if_absent(key, body):
                result.uploaded += 1
            else:
                result.skipped += 1
        case UploadBundle(key=key, body=body) | UploadTemplates(key=key, body=body):
            if not store.put_if_absent(key, body):
                result.skipped += 1
        case WriteDag(pipeline=pipeline, key=key, body=body, rendered_hash=rendered_hash):
            result.version_ids[pipeline] = store.put(
                key,
                body,
                metadata={RENDERED_HASH_METADATA: rendered_hash},
                content_type="text/x-python",
                state="the object holds its previous file or the new one, never part of one",
            )
            result.uploaded += 1
        case DeleteDag(key=key):
            store.delete(key)
            result.deleted += 1
        case WriteManifest(manifest=manifest, expected_etag=etag, pending_versions=pending):
            records = dict(manifest.pipelines)
            for name in pending:
                records[name] = records[name].model_copy(
                    update={"dag_version_id": result.version_ids.get(name)}
                )
            final = manifest.model_copy(update={"pipelines": records})
            result.manifest_etag = store.write_manifest(final, etag)
