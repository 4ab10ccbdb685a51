"""The opening of a promotion: what was asked, the route it takes, and the target's first reads,
sent before the rest of the promotion is loaded.

A promotion that finds nothing to do spends most of its time waiting for the listing of the
target's DAG prefix. So as soon as the target is known, who is promoting is checked (STS, against
the stage's account: nothing of the stage is read before this), and the manifest and that listing
are sent on their own threads; `promote.workflow` is imported, the working tree hashed and the
shared inputs digested while they are answered. Once they are on the wire, the Airflow process of
the DagBag gates starts (`promote.gates.start_dagbag_gate`), unless `mwaa-elt` started it
already (`promote.airflow_ahead`): importing Airflow takes longer than anything a promotion does
before its gates, but not longer than validating and rendering what they gate. This module
imports only what the reads need: not the plan, not the gates.

`mwaa-elt promote` opens before its command line is imported (`open_ahead`, from
`mwaa_elt.__main__`): the listing is answered while Typer, rich and the workflow load, instead
of after. What that opening raised is raised when the command opens (`open_promotion`), where
the command line reports it; nothing is read or checked twice.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.promote.airflow_ahead import promotion_in_project
from mwaa_elt.promote.identity import Identity, caller_arn, identity_now
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.store import StageStore, store_client
from mwaa_elt.stage import Stage, load_all_stages

# How long the caller waits for the listing's first request to leave: it is prepared in
# milliseconds; the bound only keeps a slow credential lookup from holding the caller.
LISTING_SEND_WAIT_SECONDS = 0.25
_LISTING_SENT = "before-send.s3.ListObjectsV2"


@dataclass(frozen=True)
class PromoteRequest:
    """What `mwaa-elt promote` was asked for: the route, the pipelines and the options."""

    to: str
    source: str | None = None
    names: tuple[str, ...] = ()
    prune: bool = False
    plan_only: bool = False
    diffs: bool = False  # show DAG diffs: the live DAG files that change are read
    skip_mwaa_checks: bool = False
    rollback_on_error: bool = False
    source_profile: str | None = None


@dataclass(frozen=True)
class TargetReads:
    """One environment's store, who promotes into it, and its first reads, in flight on their
    own threads."""

    store: StageStore
    identity: Identity
    manifest: Future[tuple[Manifest, str | None]]  # the manifest and its ETag
    dag_etags: Future[dict[str, str]]  # every key under the DAG prefix with its current ETag
    threads: ThreadPoolExecutor

    @property
    def environment(self) -> Stage:
        """The environment read: the stage itself, or the green one of its cutover."""
        return self.store.stage


@dataclass(frozen=True)
class Opening:
    """The stages, the target of the route, and the first reads of each of its environments
    (`stage.green.environments`: its own, then a cutover's green one), in that order."""

    stages: dict[str, Stage]
    target: Stage
    reads: tuple[TargetReads, ...]

    def finish(self) -> None:
        """Wait until every environment's reads are answered and their threads have ended:
        validation and rendering fork their workers only from a process running no other
        thread (`parallel.worker_count`), and otherwise run on one core."""
        for reads in self.reads:
            reads.threads.shutdown(wait=True)


def check_route(stages: Mapping[str, Stage], source: str | None, target: str) -> Stage:
    """The target stage, after refusing a promotion that does not follow `promotes_from`."""
    if target not in stages:
        raise ConfigError(f"no stage '{target}'; known: {', '.join(stages)}")
    stage = stages[target]
    expected = stage.promotes_from
    if source is None:
        if expected is not None:
            raise ConfigError(
                f"stage {target} promotes from {expected} (stacks/Pulumi.{target}.yaml: "
                f"promotesFrom); run: mwaa-elt promote --from {expected} --to {target}"
            )
        return stage
    if source not in stages:
        raise ConfigError(f"no stage '{source}'; known: {', '.join(stages)}")
    if expected != source:
        route = f"{expected} → {target}" if expected else f"the working tree → {target}"
        raise ConfigError(
            f"refusing {source} → {target}: stage {target} promotes from "
            f"{expected or 'the working tree'} only ({route}); promotions may not skip a stage"
        )
    return stage


# The opening `open_ahead` made, or what it raised, by project root, source and target: the
# promotion that asks for that route takes it; one that asks for another ends it unused.
_opened_ahead: dict[tuple[Path, str | None, str], Opening | BaseException] = {}


def open_ahead(arguments: Sequence[str]) -> None:
    """For the arguments of `mwaa-elt promote --to <stage>`: open that promotion now, before the
    command line is imported, for `open_promotion` to take. Never raises: what went wrong is
    raised when the command opens the promotion, and reported as it reports it."""
    promotion = promotion_in_project(arguments)
    if promotion is None:
        return
    target, project = promotion
    route = (project.root, target.source, target.stage)
    try:
        _opened_ahead[route] = _open(project, target.source, target.stage)
    except BaseException as error:  # an interrupt too: the command reports it as its own
        _opened_ahead[route] = error


def open_promotion(project: Project, request: PromoteRequest) -> Opening:
    """Load the stages, check the route, and start the first reads of every environment of the
    target, or take what `open_ahead` did for that route; nothing is written."""
    from mwaa_elt.promote.gates import cancel_started_gates

    ahead = _opened_ahead.pop((project.root, request.source, request.to), None)
    for other in _opened_ahead.values():
        if isinstance(other, Opening):
            other.finish()
    _opened_ahead.clear()
    if isinstance(ahead, BaseException):
        cancel_started_gates()  # the command started its gates' Airflow again meanwhile
        raise ahead
    return ahead if ahead is not None else _open(project, request.source, request.to)


def _open(project: Project, source: str | None, to: str) -> Opening:
    from mwaa_elt.stage.green import environments

    try:  # the gates' Airflow may have been started already (`gates.start_gates_of`)
        stages = load_all_stages(project.stacks_dir)
        target = check_route(stages, source, to)
        # One check for every environment: a cutover's green one lives in the stage's account.
        identity = identity_now(caller_arn(target))  # nothing of the stage is read before this
        reads = tuple(start_reads(env, identity) for env in environments(target))
        # Then the gates' Airflow (when `mwaa-elt` has not started it ahead already): it is
        # needed only once the promotion has validated and rendered, the reads at once.
        from mwaa_elt.promote.gates import start_dagbag_gate

        for environment in environments(target):
            start_dagbag_gate(environment.airflow.version, project.root)
    except BaseException:
        from mwaa_elt.promote.gates import cancel_started_gates

        cancel_started_gates()
        raise
    return Opening(stages, target, reads)


def start_reads(environment: Stage, identity: Identity) -> TargetReads:
    """Send the reads of `environment`'s manifest and of its DAG prefix, for the promoter
    `identity` checked already; returned once the listing, the longer of the two, is on the
    wire."""
    store = StageStore(environment, store_client(environment.region))
    threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mwaa-elt-opening")
    try:
        dag_etags = _listing_sent(store, environment.dags_prefix, threads)
        manifest = threads.submit(store.load_manifest)
    finally:
        threads.shutdown(wait=False)  # they end with their reads (`Opening.finish` waits)
    return TargetReads(store, identity, manifest, dag_etags, threads)


def _listing_sent(store: StageStore, prefix: str, pool: Executor) -> Future[dict[str, str]]:
    """`store.current_etags(prefix)` on `pool`, once its first request has left (or it ended
    first). Until then it shares the interpreter with whatever the caller does next, and
    importing the workflow would hold it long enough to send the request late."""
    on_the_wire = threading.Event()

    def sent(**_: Any) -> None:
        on_the_wire.set()

    events = store.client.meta.events
    events.register(_LISTING_SENT, sent)
    try:
        listing = pool.submit(store.current_etags, prefix)
        listing.add_done_callback(lambda _: on_the_wire.set())
        on_the_wire.wait(LISTING_SEND_WAIT_SECONDS)
    finally:
        events.unregister(_LISTING_SENT, sent)
    return listing
