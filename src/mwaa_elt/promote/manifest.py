"""The manifest at `s3://<source_bucket>/.mwaa-elt/manifest.json`: what is live in a stage."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mwaa_elt.errors import ConfigError

MANIFEST_VERSION = 1
HISTORY_LIMIT = 20
WORKING_TREE = "working-tree"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Release(_Model):
    """One promoted version of a pipeline: what was written, from where, when and by whom."""

    source_hash: str
    rendered_hash: str
    bundle_key: str
    templates_hash: str  # the dag_templates/ snapshot it was rendered with
    templates_key: str
    dag_key: str
    dag_version_id: str | None = None  # None when the bucket is not versioned
    scripts: tuple[str, ...] = ()
    promoted_from: str  # a stage name, or "working-tree"
    promoted_at: str  # UTC, ISO 8601
    promoted_by: str  # the AWS caller identity's ARN
    git_commit: str | None = None
    tool_version: str  # the mwaa-elt that rendered it
    sql_unchecked: tuple[str, ...] = ()  # "<task>: <why>" for each task with skip_sql_checks


class PipelineRecord(Release):
    """The live release of a pipeline plus the releases before it, newest first, for rollback."""

    history: tuple[Release, ...] = ()

    def release(self) -> Release:
        """This record's live release without its history."""
        return Release.model_validate(self.model_dump(exclude={"history"}))

    def succeeded_by(self, release: Release, limit: int = HISTORY_LIMIT) -> PipelineRecord:
        """The record after `release` goes live: the current release moves into history."""
        history = (self.release(), *self.history)[:limit]
        return PipelineRecord(**release.model_dump(), history=history)


class Manifest(_Model):
    """Every pipeline live in a stage, by name."""

    version: Literal[1] = MANIFEST_VERSION
    stage: str
    pipelines: dict[str, PipelineRecord] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The manifest as stable, human-readable JSON."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        """Parse a stored manifest; ConfigError names `where` when it is not one."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise ConfigError(
                f"{where}: not a valid mwaa-elt manifest at {location}: {first['msg']}; "
                "it was edited by hand or written by a newer mwaa-elt"
            ) from None


def empty_manifest(stage: str) -> Manifest:
    """The manifest of a stage nothing was ever promoted into."""
    return Manifest(stage=stage)
