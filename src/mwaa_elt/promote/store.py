"""The S3 side of promotion: one stage's source bucket, with retries and conditional writes.

Clients honour boto3's standard `AWS_ENDPOINT_URL`, so the same code runs against AWS, the
sandbox or anyone's own emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from mwaa_elt import aws
from mwaa_elt.aws import MISSING, NOTHING_CHANGED, PRECONDITION, UNSATISFIABLE_RANGE
from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.manifest import (
    Manifest,
    Written,
    empty_manifest,
    history_bytes,
    history_key,
    parse_history,
)
from mwaa_elt.stage import Stage

T = TypeVar("T")
# Histories are read and written this many at a time (one object per changed pipeline).
HISTORY_WORKERS = 16
_R = TypeVar("_R")


def _parallel(function: Callable[[T], _R], items: Iterable[T]) -> list[_R]:
    """`function` over `items` on a few threads, in order; the first error is raised."""
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(HISTORY_WORKERS, thread_name_prefix="mwaa-elt-history") as pool:
        return list(pool.map(function, work))


RENDERED_HASH_METADATA = "mwaa-elt-rendered-hash"
_RERUN = "the manifest still describes what is live; re-run to complete"


def make_client(service: str, region: str, *, profile: str | None = None) -> Any:
    """A boto3 client with the CLI's retry policy (`mwaa_elt.aws`), from `profile` or the
    default credential chain; enough connections for apply's parallel uploads."""
    return aws.client(service, region, profile=profile)


def store_client(region: str, *, profile: str | None = None) -> Any:
    """The S3 client of a `StageStore`, as `make_client` gives it but for timestamps: the store
    reads none from S3's answers, so they are left unparsed (`aws.client`'s `raw_timestamps`;
    the DAG prefix's listing is read on every promotion)."""
    return aws.client("s3", region, profile=profile, raw_timestamps=True)


class StageStore:
    """Reads and writes one stage's source bucket; every AWS call goes through `aws.call`, so
    each failure is retried by one policy and reported as an `AwsCallError` naming the object."""

    def __init__(self, stage: Stage, client: Any | None = None) -> None:
        self.stage = stage
        self.bucket = stage.source_bucket
        self.client = client or store_client(stage.region)

    def uri(self, key: str) -> str:
        """The s3:// URI of `key` in this stage's bucket."""
        return f"s3://{self.bucket}/{key}"

    def _call(
        self,
        operation: str,
        key: str,
        run: Callable[[], T],
        *,
        state: str = NOTHING_CHANGED,
        expected: frozenset[str] = frozenset(),
    ) -> T:
        return aws.call(f"s3:{operation} {self.uri(key)}", run, state=state, expected=expected)

    def _head(self, key: str) -> dict[str, Any] | None:
        """HeadObject of `key` (no body), or None when it does not exist."""
        try:
            return self._call(
                "HeadObject",
                key,
                lambda: dict(self.client.head_object(Bucket=self.bucket, Key=key)),
                expected=MISSING,
            )
        except ClientError:
            return None

    def etag(self, key: str) -> str | None:
        """The current ETag of `key`, or None when it does not exist."""
        found = self._head(key)
        return None if found is None else str(found["ETag"])

    def has_etag(self, key: str, etag: str) -> bool:
        """Whether `key` exists and still has `etag`: one conditional HEAD, no body."""
        try:
            self._call(
                "HeadObject",
                key,
                lambda: self.client.head_object(Bucket=self.bucket, Key=key, IfMatch=etag),
                expected=MISSING | PRECONDITION,
            )
        except ClientError:
            return False
        return True

    def head_metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of `key`, or None when it does not exist."""
        found = self._head(key)
        return None if found is None else dict(found.get("Metadata") or {})

    def head_version(self, key: str) -> tuple[Written, dict[str, str]] | None:
        """The current version and user metadata of `key`, or None when it does not exist."""
        found = self._head(key)
        if found is None:
            return None
        return Written(found.get("VersionId"), found.get("ETag")), dict(found.get("Metadata") or {})

    def exists(self, key: str) -> bool:
        """Whether `key` exists (HEAD)."""
        return self.head_metadata(key) is not None

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> tuple[bytes, str] | None:
        """The object's body and ETag, or None when it does not exist; a body cut off while
        read is fetched again. With `byte_range` (offset, length), only those bytes: fewer when
        the object ends within them, none when it ends before them."""
        extra = {}
        if byte_range is not None:
            offset, length = byte_range
            extra["Range"] = f"bytes={offset}-{offset + length - 1}"

        def read() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            return response["Body"].read(), str(response["ETag"])

        expected = MISSING if byte_range is None else MISSING | UNSATISFIABLE_RANGE
        try:
            return self._call("GetObject", key, read, expected=expected)
        except ClientError as error:
            if aws.error_code(error) in UNSATISFIABLE_RANGE:
                return b"", ""
            return None

    def put(
        self,
        key: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
        state: str = _RERUN,
    ) -> Written:
        """Write `key` with one PutObject (atomic for readers); the version S3 made of it."""
        response = self._call(
            "PutObject",
            key,
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=dict(metadata or {}),
            ),
            state=state,
        )
        return Written(response.get("VersionId"), response.get("ETag"))

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
        failed = PRECONDITION | (MISSING if if_match else frozenset())
        try:
            response = self._call(
                "PutObject",
                key,
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
                ),
                expected=failed,
            )
        except ClientError:
            return None
        return str(response["ETag"])

    def put_if_absent(
        self, key: str, body: bytes, *, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write a content-addressed `key` unless it exists; True when it was written."""
        written = self.put_conditional(key, body, if_none_match=True, content_type=content_type)
        return written is not None

    def delete(self, key: str) -> None:
        """Delete `key` (a delete marker in a versioned bucket, so it can be restored)."""
        self._call(
            "DeleteObject",
            key,
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key),
            state="the object is still there",
        )

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
            response = self._call(
                "PutObject",
                key,
                lambda: self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    **condition,
                ),
                state="DAG files may be newer than the manifest; re-run",
                expected=PRECONDITION,
            )
        except ClientError:
            # A write whose response was lost is retried, and the retry fails its own
            # condition if the first attempt landed: the manifest is then exactly ours.
            current = self.get(key)
            if current is not None and current[0] == body:
                return current[1]
            raise ConfigError(
                f"{self.uri(key)} was changed by someone else since this promotion read "
                "it (another promotion or rollback ran); DAG files this run wrote may be "
                "live but are not recorded — re-run the promotion to plan against the new "
                "manifest"
            ) from None
        return str(response["ETag"])

    def get_version(self, key: str, version_id: str) -> tuple[bytes, dict[str, str]] | None:
        """One recorded version of `key`: its body and user metadata, or None if it is gone."""

        def read() -> tuple[bytes, dict[str, str]]:
            response = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            return response["Body"].read(), dict(response.get("Metadata") or {})

        try:
            return self._call(
                "GetObject", key, read, expected=MISSING | {"NoSuchVersion", "InvalidArgument"}
            )
        except ClientError:
            return None

    def latest_versions(self, prefix: str) -> dict[str, str | None]:
        """Every key under `prefix` with its current version id ("null" when the bucket was
        never versioned); keys whose latest version is a delete marker are left out."""

        def listing() -> dict[str, str | None]:
            current: dict[str, str | None] = {}
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for version in page.get("Versions", []):
                    if version.get("IsLatest"):
                        current[version["Key"]] = version.get("VersionId")
            return current

        return self._call("ListObjectVersions", prefix, listing)

    def current_etags(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` with its current ETag: one listing of current objects only,
        whatever the history under it (ListObjectsV2)."""

        def listing() -> dict[str, str]:
            current: dict[str, str] = {}
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for found in page.get("Contents", []):
                    current[found["Key"]] = str(found["ETag"])
            return current

        return self._call("ListObjectsV2", prefix, listing)

    def read_dags(self, keys: list[str]) -> dict[str, bytes]:
        """The current bodies of the DAG files among `keys` that exist (for plan diffs)."""
        found: dict[str, bytes] = {}
        for key in keys:
            result = self.get(key)
            if result is not None:
                found[key] = result[0]
        return found
