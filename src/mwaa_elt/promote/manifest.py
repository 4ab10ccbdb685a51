"""The manifest at `s3://<source_bucket>/.mwaa-elt/manifest.json`: what is live in a stage.

Format 2 keeps the live index small: each pipeline's record holds its live release and the key
of its history (`.mwaa-elt/history/<pipeline>/<sha256>.json`, immutable, content-addressed,
written before the index that points at it). A promotion reads the index, reads the history of
the pipelines it changes, and writes their new histories and the index: its cost grows with
what changed, not with how much was promoted before. Format 1 (histories inline) is still read;
the next write stores it as format 2.

Format 3 adds `bundle_range` to a release: a promotion that moves several pipelines stores their
source bundles as one object (a pack) and records where each one lies in it, so that a first
promotion of 1,000 pipelines writes one object for their sources, not 1,000. Formats 1 and 2
are still read; an mwaa-elt that predates format 3 refuses it, saying a newer one wrote it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from mwaa_elt.errors import ConfigError

MANIFEST_VERSION = 3
HISTORY_LIMIT = 20
WORKING_TREE = "working-tree"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Written:
    """One version of an object as S3 reports it: its version id ("null" or None when the bucket
    is not versioned) and its ETag."""

    version_id: str | None
    etag: str | None


class Inputs(_Model):
    """What a release was rendered from, digested: promotion compares it instead of rendering.

    `hash` covers the pipeline's folder, the dag_templates/ snapshot and every input all
    pipelines share (`promote.inputs`); `spec` (relative to pipelines/), `produces` and `after`
    let the checks across specs run without reading an unchanged spec again.
    """

    hash: str
    spec: str
    produces: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


class Release(_Model):
    """One promoted version of a pipeline: what was written, from where, when and by whom."""

    source_hash: str
    rendered_hash: str
    bundle_key: str
    # (offset, length) of the bundle inside the pack at `bundle_key`; None: the object is the
    # bundle (one pipeline moved, or recorded before format 3).
    bundle_range: tuple[NonNegativeInt, PositiveInt] | None = None
    templates_hash: str  # the dag_templates/ snapshot it was rendered with
    templates_key: str
    dag_key: str
    dag_version_id: str | None = None  # None when the bucket is not versioned
    # The ETag S3 gave the DAG object; None: recorded by an mwaa-elt that did not record it.
    dag_etag: str | None = None
    scripts: tuple[str, ...] = ()
    promoted_from: str  # a stage name, or "working-tree"
    promoted_at: str  # UTC, ISO 8601
    promoted_by: str  # the AWS caller identity's ARN
    git_commit: str | None = None
    tool_version: str  # the mwaa-elt that rendered it
    sql_unchecked: tuple[str, ...] = ()  # "<task>: <why>" for each task with skip_sql_checks
    inputs: Inputs | None = None  # None: recorded by an mwaa-elt that did not digest inputs
    # The Airflow version the DAG file was rendered for (its line decides which APIs it uses);
    # None: recorded by an mwaa-elt that did not record it.
    airflow_version: str | None = None


class PipelineRecord(Release):
    """The live release of a pipeline plus the releases before it, newest first, for rollback."""

    history: tuple[Release, ...] = ()
    # Where the history is stored (format 2); until it is read, `history` is empty.
    history_key: str | None = None

    @property
    def history_loaded(self) -> bool:
        """Whether `history` holds the releases before this one (not just a key to them)."""
        return self.history_key is None or bool(self.history)

    def release(self) -> Release:
        """This record's live release without its history."""
        return Release.model_validate(self.model_dump(exclude={"history", "history_key"}))

    def succeeded_by(self, release: Release, limit: int = HISTORY_LIMIT) -> PipelineRecord:
        """The record after `release` goes live: the current release moves into history."""
        if not self.history_loaded:
            raise RuntimeError(f"{self.dag_key}: the history was not read before it was extended")
        history = (self.release(), *self.history)[:limit]
        return PipelineRecord(**release.model_dump(), history=history)


class Manifest(_Model):
    """Every pipeline live in a stage, by name."""

    version: Literal[1, 2, 3] = MANIFEST_VERSION
    stage: str
    pipelines: dict[str, PipelineRecord] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The whole manifest, histories inline (format 1), as stable, human-readable JSON."""
        data = self.model_dump(mode="json", exclude={"pipelines": {"__all__": {"history_key"}}})
        data["version"] = 1
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    def index_bytes(self) -> bytes:
        """The live index (format 2): every record without its history, by its history key.

        One line per pipeline: small, stable, and diffs line by line."""
        lines = [f'{{"version":{MANIFEST_VERSION},"stage":{json.dumps(self.stage)},"pipelines":{{']
        names = sorted(self.pipelines)
        for index, name in enumerate(names):
            record = self.pipelines[name].model_dump(mode="json", exclude={"history"})
            text = json.dumps(record, sort_keys=True, separators=(",", ":"))
            comma = "," if index < len(names) - 1 else ""
            lines.append(f"{json.dumps(name)}:{text}{comma}")
        lines.append("}}")
        return ("\n".join(lines) + "\n").encode()

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


def history_bytes(pipeline: str, history: tuple[Release, ...]) -> bytes:
    """One pipeline's history object: its releases before the live one, newest first."""
    data = {"pipeline": pipeline, "history": [r.model_dump(mode="json") for r in history]}
    return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()


def history_key(prefix: str, pipeline: str, body: bytes) -> str:
    """The content-addressed key of a history object under the stage's history prefix."""
    return f"{prefix}{pipeline}/{hashlib.sha256(body).hexdigest()}.json"


class _History(_Model):
    pipeline: str
    history: tuple[Release, ...]


def parse_history(data: bytes, pipeline: str, where: str) -> tuple[Release, ...]:
    """The releases of a stored history object; ConfigError names `where` when it is not one."""
    try:
        parsed = _History.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise ConfigError(
            f"{where}: not a valid mwaa-elt history at {location}: {first['msg']}; "
            "it was edited by hand or written by a newer mwaa-elt"
        ) from None
    if parsed.pipeline != pipeline:
        raise ConfigError(f"{where}: holds the history of {parsed.pipeline!r}, not {pipeline!r}")
    return parsed.history


def empty_manifest(stage: str) -> Manifest:
    """The manifest of a stage nothing was ever promoted into."""
    return Manifest(stage=stage)
