"""What a removed cutover left in the stage's bucket: green's DAG files, which promotion keeps.

Removing `cutover:` from the stack makes the next `pulumi up` delete the green environment;
promotion then writes to the stage's own environment only. It deletes nothing of green's: the
files may be what `cutover finish` or a rollback to green still needs, and a DAG folder no
environment reads runs nothing. It says what is left and how to remove it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mwaa_elt.promote.store import StageStore
from mwaa_elt.stage import Stage
from mwaa_elt.stage.green import retired_green


@dataclass(frozen=True)
class Leftovers:
    """The DAG files a former green environment's manifest records, and where they live."""

    environment: str
    bucket: str
    dag_keys: tuple[str, ...]
    prefixes: tuple[str, ...]  # what removing the leftovers removes, whole

    def to_dict(self) -> dict[str, Any]:
        """For `--json`."""
        return {
            "environment": self.environment,
            "bucket": self.bucket,
            "dag_keys": list(self.dag_keys),
            "prefixes": list(self.prefixes),
        }

    def advice(self) -> str:
        """One line telling the user what is left and the commands that remove it."""
        commands = " and ".join(
            f"aws s3 rm --recursive s3://{self.bucket}/{prefix}" for prefix in self.prefixes
        )
        return (
            f"the stack has no cutover block, but {len(self.dag_keys)} DAG file(s) of the former "
            f"green environment {self.environment} remain in s3://{self.bucket}/"
            f"{self.prefixes[0]} (left alone: no environment reads them once `pulumi up` has "
            f"removed it); to clean up, run {commands}"
        )


def green_leftovers(stage: Stage, client: Any) -> Leftovers | None:
    """What a former green environment of `stage` left, None when nothing (or a cutover is on,
    or green serves the stage: its DAG folder is then the stage's own)."""
    if stage.config.cutover is not None or stage.config.serving_environment == "green":
        return None
    green = retired_green(stage)
    manifest, _ = StageStore(green, client).load_manifest()
    if not manifest.pipelines:
        return None
    return Leftovers(
        environment=green.environment_name,
        bucket=green.source_bucket,
        dag_keys=tuple(sorted(record.dag_key for record in manifest.pipelines.values())),
        prefixes=(green.dags_prefix, green.paths.tool_state),
    )
