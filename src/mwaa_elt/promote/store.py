"""The S3 side of promotion: one stage's source bucket, with retries and conditional writes.

Clients honour boto3's standard `AWS_ENDPOINT_URL`, so the same code runs against AWS, the
sandbox or anyone's own emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.promote.manifest import (
    Manifest,
    empty_manifest,
    history_bytes,
    history_key,
    parse_history,
)
from mwaa_elt.stage import Stage

# Standard retries for throttling and 5xx; enough connections for apply's parallel uploads.
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5}, max_pool_connections=16)
# Histories are read and written this many at a time (one object per changed pipeline).
HISTORY_WORKERS = 16
_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """`function` over `items` on a few threads, in order; the first error is raised."""
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(HISTORY_WORKERS, thread_name_prefix="mwaa-elt-history") as pool:
        return list(pool.map(function, work))


RENDERED_HASH_METADATA = "mwaa-elt-rendered-hash"
_MISSING = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_RERUN = "the manifest still describes what is live; re-run to complete"


def make_client(service: str, region: str, *, profile: str | None = None) -> Any:
    """A boto3 client with botocore's standard retry mode (5 attempts in all), from `profile` or the
    default credential chain."""
    try:
        session = boto3.session.Session(profile_name=profile)
    except ProfileNotFound as error:
        raise ConfigError(f"AWS profile: {error}") from None
    return session.client(service, region_name=region, config=RETRIES)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class StageStore:
    """Reads and writes one stage's source bucket; every AWS failure becomes ExternalError."""

    def __init__(self, stage: Stage, client: Any | None = None) -> None:
        self.stage = stage
        self.bucket = stage.source_bucket
        self.client = client or make_client("s3", stage.region)

    def uri(self, key: str) -> str:
        """The s3:// URI of `key` in this stage's bucket."""
        return f"s3://{self.bucket}/{key}"

    def _fail(self, what: str, key: str, error: Exception, state: str) -> ExternalError:
        return ExternalError(f"{what} {self.uri(key)} failed: {error}; {state}")

    def _head(self, key: str) -> dict[str, Any] | None:
        """HeadObject of `key` (no body), or None when it does not exist."""
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._fail("HEAD", key, error, "nothing was changed by this step") from None
        except BotoCoreError as error:
            raise self._fail("HEAD", key, error, "nothing was changed by this step") from None

    def etag(self, key: str) -> str | None:
        """The current ETag of `key`, or None when it does not exist."""
        found = self._head(key)
        return None if found is None else str(found["ETag"])

    def head_metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of `key`, or None when it does not exist."""
        found = self._head(key)
        return None if found is None else dict(found.get("Metadata") or {})

    def exists(self, key: str) -> bool:
        """Whether `key` exists (HEAD)."""
        return self.head_metadata(key) is not None

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The object's body and ETag, or None when it does not exist."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read(), str(response["ETag"])
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._fail("reading", key, error, "nothing was changed by this step") from None
        except BotoCoreError as error:
            raise self._fail("reading", key, error, "nothing was changed by this step") from None

    def put(
        self,
        key: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
        state: str = _RERUN,
    ) -> str | None:
        """Write `key` with one PutObject (atomic for readers); returns its version id."""
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=dict(metadata or {}),
            )
        except (ClientError, BotoCoreError) as error:
            raise self._fail("writing", key, error, state) from None
        return response.get("VersionId")

    def put_conditional(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/json",
    ) -> str | None:
        """Write `key` only if it does not exist (`if_none_match`) or still has the ETag
        `if_match`; the new ETag, or None when the condition failed."""
        condition = {"IfNoneMatch": "*"} if if_none_match else {"IfMatch": if_match}
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
            )
        except ClientError as error:
            if _code(error) in _PRECONDITION or (if_match and _code(error) in _MISSING):
                return None
            raise self._fail("writing", key, error, "nothing was changed by this step") from None
        except BotoCoreError as error:
            raise self._fail("writing", key, error, "nothing was changed by this step") from None
        return str(response["ETag"])

    def put_if_absent(
        self, key: str, body: bytes, *, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write a content-addressed `key` unless it exists; True when it was written."""
        written = self.put_conditional(key, body, if_none_match=True, content_type=content_type)
        return written is not None

    def delete(self, key: str) -> None:
        """Delete `key` (a delete marker in a versioned bucket, so it can be restored)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise self._fail("deleting", key, error, "the object is still there") from None

    def load_manifest(self) -> tuple[Manifest, str | None]:
        """The stage's manifest and its ETag, or an empty manifest and None if there is none."""
        found = self.get(self.stage.manifest_key)
        if found is None:
            return empty_manifest(self.stage.name), None
        body, etag = found
        manifest = Manifest.from_bytes(body, self.uri(self.stage.manifest_key))
        if manifest.stage != self.stage.name:
            raise ConfigError(
                f"{self.uri(self.stage.manifest_key)} describes stage {manifest.stage!r}, not "
                f"{self.stage.name!r}; the bucket is shared or the file was copied by hand"
            )
        return manifest, etag

    def load_histories(self, manifest: Manifest, names: Iterable[str]) -> Manifest:
        """`manifest` with the histories of the pipelines `names` read (format 2 stores each
        under its own key; format 1 holds them already)."""
        wanted = [
            name
            for name in sorted(set(names))
            if name in manifest.pipelines and not manifest.pipelines[name].history_loaded
        ]
        if not wanted:
            return manifest

        def read(name: str) -> tuple[str, Any]:
            key = manifest.pipelines[name].history_key
            assert key is not None  # not loaded means stored under a key
            found = self.get(key)
            if found is None:
                raise ConfigError(
                    f"{self.uri(key)}: the history of {name} recorded in the manifest of stage "
                    f"{self.stage.name} is missing; it was deleted outside mwaa-elt"
                )
            return name, parse_history(found[0], name, self.uri(key))

        records = dict(manifest.pipelines)
        for name, history in _parallel(read, wanted):
            records[name] = records[name].model_copy(update={"history": history})
        return manifest.model_copy(update={"pipelines": records})

    def write_manifest(self, manifest: Manifest, expected_etag: str | None) -> str:
        """Write the histories that changed, then the live index only if it is unchanged since
        it was read; returns the index's new ETag."""
        key = self.stage.manifest_key
        records = dict(manifest.pipelines)
        pending: list[tuple[str, bytes]] = []
        for name, record in manifest.pipelines.items():
            if not record.history:
                continue  # none yet, or not read: the recorded key still holds it
            data = history_bytes(name, record.history)
            stored = history_key(self.stage.history_prefix, name, data)
            if stored != record.history_key:
                pending.append((stored, data))
                records[name] = record.model_copy(update={"history_key": stored})
        # Content-addressed and written before the index that points at them: a reader of the
        # old index never sees them, a failed run leaves only unreferenced objects.
        _parallel(
            lambda item: self.put_if_absent(item[0], item[1], content_type="application/json"),
            pending,
        )
        body = manifest.model_copy(update={"pipelines": records}).index_bytes()
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if _code(error) in _PRECONDITION:
                # botocore retries a write whose response was lost; if the first attempt landed,
                # the retry fails its own condition: the manifest is then exactly ours.
                current = self.get(key)
                if current is not None and current[0] == body:
                    return current[1]
                raise ConfigError(
                    f"{self.uri(key)} was changed by someone else since this promotion read "
                    "it (another promotion or rollback ran); DAG files this run wrote may be "
                    "live but are not recorded — re-run the promotion to plan against the new "
                    "manifest"
                ) from None
            raise self._fail(
                "writing manifest", key, error, "DAG files may be newer than the manifest; re-run"
            ) from None
        except BotoCoreError as error:
            raise self._fail(
                "writing manifest", key, error, "DAG files may be newer than the manifest; re-run"
            ) from None
        return str(response["ETag"])

    def get_version(self, key: str, version_id: str) -> tuple[bytes, dict[str, str]] | None:
        """One recorded version of `key`: its body and user metadata, or None if it is gone."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            return response["Body"].read(), dict(response.get("Metadata") or {})
        except ClientError as error:
            if _code(error) in {*_MISSING, "NoSuchVersion", "InvalidArgument"}:
                return None
            raise self._fail("reading", key, error, "nothing was changed by this step") from None
        except BotoCoreError as error:
            raise self._fail("reading", key, error, "nothing was changed by this step") from None

    def latest_versions(self, prefix: str) -> dict[str, str | None]:
        """Every key under `prefix` with its current version id ("null" when the bucket was
        never versioned); keys whose latest version is a delete marker are left out."""
        current: dict[str, str | None] = {}
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for version in page.get("Versions", []):
                    if version.get("IsLatest"):
                        current[version["Key"]] = version.get("VersionId")
        except (ClientError, BotoCoreError) as error:
            raise self._fail("listing", prefix, error, "nothing was changed") from None
        return current

    def read_dags(self, keys: list[str]) -> dict[str, bytes]:
        """The current bodies of the DAG files among `keys` that exist (for plan diffs)."""
        found: dict[str, bytes] = {}
        for key in keys:
            result = self.get(key)
            if result is not None:
                found[key] = result[0]
        return found
