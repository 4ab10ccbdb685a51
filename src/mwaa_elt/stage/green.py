"""The green environment of a stage's cutover, as a stage: the same names except its own.

A blue/green cutover runs a second MWAA environment in the stage (`cutover:` in the stack
file). Everything the two share — account, network, execution role, buckets, Glue databases,
Athena workgroup, EMR roles, secrets, alert topics, content-addressed scripts — keeps the
stage's names, so DAGs rendered for green read and write exactly what blue's do. What is the
environment's own is derived here:

- its name, `<prefix>-<stage>-green` (so its ARN, log groups, alarms and Airflow role too);
- its DAG folder, `green/dags/` in the stage's source bucket: MWAA's `DagS3Path` is a path
  inside `SourceBucketArn`, so two environments can share a bucket; its versioning, public
  access block, key and lifecycle, and the execution role's read grant, then hold for both. The
  prefix does not start with `dags`, so no tool that treats `dags` as a bare key prefix (rather
  than the folder `dags/`) ever mixes the two;
- its requirements.txt, plugins.zip and startup script under `green/`: requirements.txt names
  the Airflow version's constraints, so the two environments cannot share it;
- its promotion state (manifest, lock, histories, bundles) under `.mwaa-elt/green/`: what is
  live in green is recorded beside green's DAG folder, and the stage's own manifest (what is
  live in blue, which the next stage promotes from) keeps its format and place.

Removing `green/` and `.mwaa-elt/green/` after an abandoned cutover leaves blue exactly as it
was. After a switch, blue is retired the other way round: `servingEnvironment: green` (with the
block's settings moved to the stage's own keys and the block removed) makes green the stage's
own environment under the same names, paths and Pulumi logical names, so the program stops
declaring blue and green is left as it is (`mwaa-elt cutover finish` prints that change).
"""

from __future__ import annotations

from dataclasses import dataclass

from mwaa_elt.stage import Stage
from mwaa_elt.stage.names import GREEN, GREEN_PATHS


@dataclass(frozen=True)
class GreenStage(Stage):
    """The stage as its green environment sees it: green's version, class, name and paths."""

    # Promotion renders green's DAG files paused: nothing runs twice while both environments
    # hold the pipelines; `cutover switch` unpauses them in green once blue's are paused.
    paused_on_creation: bool = True

    @property
    def environment_name(self) -> str:
        return f"{self.resource_prefix}-{GREEN}"

    @property
    def blue_environment_name(self) -> str:
        """The stage's own environment, the one the cutover moves away from."""
        return self.resource_prefix


def green_stage(stage: Stage) -> GreenStage | None:
    """`stage`'s green environment while its stack file has a `cutover` block, else None (also
    once green serves the stage: it is then the stage itself)."""
    if isinstance(stage, GreenStage):
        return None
    cutover = stage.config.cutover
    if cutover is None:
        return None
    # The values were validated with the stage (`cutover_config.check_cutover`).
    config = stage.config.model_copy(update={**cutover.settings(stage.config), "cutover": None})
    return GreenStage(
        name=stage.name,
        region=stage.region,
        config=config,
        source_file=stage.source_file,
        paths=GREEN_PATHS,
    )


def environments(stage: Stage) -> list[Stage]:
    """The stage's environments: its own, then the cutover's green one while it exists."""
    green = green_stage(stage)
    return [stage] if green is None else [stage, green]


def paused_on_creation(stage: Stage) -> bool:
    """Whether DAGs rendered for `stage` are paused when the scheduler first sees them."""
    return isinstance(stage, GreenStage) and stage.paused_on_creation


def retired_green(stage: Stage) -> GreenStage:
    """Where the green environment of a cutover kept its DAGs and state, once the stack no
    longer has the block: to say what it left in the bucket (nothing reads it otherwise)."""
    return GreenStage(
        name=stage.name,
        region=stage.region,
        config=stage.config.model_copy(update={"cutover": None}),
        source_file=stage.source_file,
        paths=GREEN_PATHS,
    )
