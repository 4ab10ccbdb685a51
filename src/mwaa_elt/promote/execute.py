"""Run a plan for real: under the stage lock, then verify with Airflow and undo on request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.promote import phases
from mwaa_elt.promote.apply import ApplyResult, Progress, apply_plan
from mwaa_elt.promote.identity import Identity
from mwaa_elt.promote.lock import Lease, LockInfo, check_held, stage_lock
from mwaa_elt.promote.mwaa import MwaaEnvironment, Verification, verify_parsed
from mwaa_elt.promote.plan import Plan, WriteDag
from mwaa_elt.promote.rollback import plan_rollback
from mwaa_elt.promote.store import StageStore


@dataclass
class Outcome:
    """What executing a plan did: the apply, Airflow's verdict, and any automatic rollback."""

    applied: ApplyResult
    verification: Verification | None = None
    rollback: ApplyResult | None = None
    took_over: LockInfo | None = None  # a stale lock this run replaced
    lock_warning: str | None = None  # the lock could not be released

    @property
    def ok(self) -> bool:
        """No promoted DAG failed to import."""
        return self.verification is None or self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        """`promote --json`: the apply's counts plus verification and rollback."""
        data = self.applied.to_dict()
        data["verification"] = None if self.verification is None else self.verification.to_dict()
        data["rolled_back"] = (
            [] if self.rollback is None else [c.pipeline for c in self.rollback.plan.changes]
        )
        return data


@dataclass(frozen=True)
class Verify:
    """How to check Airflow after apply: the environment, how long to wait, what to do then."""

    environment: MwaaEnvironment
    timeout_seconds: float
    poll_seconds: float = 15.0
    rollback_on_error: bool = False


def execute(
    store: StageStore,
    plan: Plan,
    *,
    owner: str,
    identity: Identity,
    force_unlock: bool = False,
    force_token: str | None = None,
    progress: Progress | None = None,
    verify: Verify | None = None,
) -> Outcome:
    """Take the stage lock, apply `plan` if the manifest is still the one it was built against,
    verify the new DAGs with Airflow, and roll failed ones back when asked; every write is
    fenced by the lock (`lock.check_held`)."""
    lease: Lease | None = None
    try:
        with stage_lock(store, owner, force=force_unlock, force_token=force_token) as lease:
            phases.reached("locked")
            outcome = _apply_and_verify(store, plan, identity, progress, verify, lease)
            outcome.took_over = lease.taken_over
    except MwaaEltError as error:
        if lease is not None and lease.release_error is not None:
            error.messages.append(f"the stage lock could not be released: {lease.release_error}")
        raise
    outcome.lock_warning = lease.release_error
    return outcome


def _apply_and_verify(
    store: StageStore,
    plan: Plan,
    identity: Identity,
    progress: Progress | None,
    verify: Verify | None,
    lease: Lease,
) -> Outcome:
    if store.etag(store.stage.manifest_key) != plan.manifest_etag:
        raise ConfigError(
            f"the manifest of stage {plan.stage} changed since this plan was made (another "
            "promotion or rollback finished meanwhile); nothing was changed — run the "
            "command again to plan against what is live now"
        )
    written_at = datetime.now(UTC)
    outcome = Outcome(apply_plan(store, plan, progress, guard=lambda: check_held(store, lease)))
    written = {s.pipeline: s.body for s in plan.steps if isinstance(s, WriteDag)}
    if verify is None or not written:
        return outcome
    outcome.verification = verify_parsed(
        verify.environment,
        written,
        written_at,
        timeout_seconds=verify.timeout_seconds,
        poll_seconds=verify.poll_seconds,
    )
    failed = sorted(outcome.verification.import_errors)
    if failed and verify.rollback_on_error and plan.source != "rollback":
        manifest, etag = store.load_manifest()
        undo = plan_rollback(
            store, manifest, etag, dict.fromkeys(failed), identity, remove_without_history=True
        )
        outcome.rollback = apply_plan(store, undo, guard=lambda: check_held(store, lease))
    return outcome
