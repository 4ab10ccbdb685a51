"""Many pipelines' source bundles in one object, each read back by its byte range.

A first promotion of 1,000 pipelines stored 1,000 bundles of about a kilobyte each: a request
apiece, as many as its DAG files. A promotion that moves several pipelines now writes their new
bundles end to end into one content-addressed object (a pack, under the stage's bundles prefix,
so the same IAM statements cover it) and records each one's offset and length
(`Release.bundle_range`). A bundle read back is verified against its source hash as before, so
a pack that was replaced or cut short is refused, never trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from mwaa_elt.promote.bundle import Bundle

# One pipeline's bundle stays an object of its own: the format every mwaa-elt reads.
SMALLEST_PACK = 2
# Packs are split so that no single upload grows without bound (5,000 pipelines of the
# benchmark's size make one pack of about 5 MB).
LARGEST_PACK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Pack:
    """Bundles written end to end, and where each lies in the data, by source hash."""

    data: bytes
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    def key(self, bundles_prefix: str) -> str:
        """The content-addressed key of this pack under the stage's bundles prefix."""
        return f"{bundles_prefix}packs/{hashlib.sha256(self.data).hexdigest()}.pack"


def pack_bundles(bundles: Iterable[Bundle], largest: int = LARGEST_PACK_BYTES) -> list[Pack]:
    """`bundles` (deduplicated by source hash, in source-hash order: the same bundles always
    make the same packs) in packs of at most `largest` bytes, unless one bundle is larger."""
    unique = {bundle.source_hash: bundle.data for bundle in bundles}
    packs: list[Pack] = []
    parts: list[bytes] = []
    ranges: dict[str, tuple[int, int]] = {}
    size = 0
    for source_hash in sorted(unique):
        data = unique[source_hash]
        if parts and size + len(data) > largest:
            packs.append(Pack(b"".join(parts), ranges))
            parts, ranges, size = [], {}, 0
        ranges[source_hash] = (size, len(data))
        parts.append(data)
        size += len(data)
    if parts:
        packs.append(Pack(b"".join(parts), ranges))
    return packs


def cut(data: bytes, bundle_range: tuple[int, int] | None) -> bytes | None:
    """The bundle at `bundle_range` in `data` (all of it when None), or None when the object is
    shorter than the range says."""
    if bundle_range is None:
        return data
    offset, length = bundle_range
    if offset < 0 or length < 0 or offset + length > len(data):
        return None
    return data[offset : offset + length]
