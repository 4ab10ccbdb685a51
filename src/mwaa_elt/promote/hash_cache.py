"""Pipeline folder hashes remembered by their files' metadata, as git's index remembers blobs.

A promotion decides from inputs (`promote.inputs`): it hashes every pipeline folder of the
working tree: at 1,000 pipelines, reading their 5,700 files took a quarter of a no-change
promotion. A folder whose files have the same paths, sizes, modification and change times and
inode numbers as when it was hashed holds the same bytes, so its recorded hash is used instead,
for one lstat per file.

What makes that safe:
- the metadata is read before the content, so a file changed while it is hashed leaves a
  record that no longer matches;
- a folder with a file changed less than `RACY_NANOSECONDS` before it was hashed is not
  recorded: a file system's clock is coarse, and a second change within the same tick would
  leave the metadata as it was (git's "racily clean" entries). It is hashed again next time;
- the change time cannot be set back by tools that preserve modification times;
- the record names the format of the hash and the mwaa-elt version; any other is ignored.

The record is local state under build/.cache, like the render record: missing, unreadable or
malformed, it is ignored, and writing it is skipped when the folder is not writable.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mwaa_elt.files import replace_file
from mwaa_elt.promote.bundle import FOLDER_HASH_FORMAT, folder_content_hash, folder_fingerprint

CACHE_FORMAT = 1
RACY_NANOSECONDS = 2_000_000_000
FILE_NAME = "folder-hashes.json"


@dataclass(frozen=True)
class _Recorded:
    content_hash: str
    fingerprint: str  # digest of `bundle.folder_fingerprint`


@dataclass
class FolderHashes:
    """Folder content hashes, reused while their fingerprints hold; `save` writes what is new.

    `path` None: nothing is read or written, every folder is hashed.
    """

    path: Path | None
    recorded: dict[str, _Recorded] = field(default_factory=dict)
    reused: int = 0
    hashed: int = 0
    _current: dict[str, _Recorded] = field(default_factory=dict)

    def content_hash(self, folder: Path) -> str:
        """`bundle.folder_content_hash(folder)`, from the record when the folder's files are
        as recorded. ConfigError for a link or special file, as the hash itself gives."""
        key = str(folder)
        began = time.time_ns()
        fingerprint = folder_fingerprint(folder)
        summary = hashlib.blake2b(repr(fingerprint).encode(), digest_size=16).hexdigest()
        known = self.recorded.get(key)
        if known is not None and known.fingerprint == summary:
            self.reused += 1
            self._current[key] = known
            return known.content_hash
        digest = folder_content_hash(folder)
        self.hashed += 1
        newest = max((max(item[2], item[3]) for item in fingerprint), default=0)
        if newest < began - RACY_NANOSECONDS:
            self._current[key] = _Recorded(digest, summary)
        return digest

    def save(self) -> None:
        """Record the folders hashed or reused since loading, and only those, when anything
        differs from what was loaded; a folder that cannot be written to is left as it is."""
        if self.path is None or self._current == self.recorded:
            return
        data = {
            "format": CACHE_FORMAT,
            "hash_format": FOLDER_HASH_FORMAT,
            "mwaa-elt": _own_version(),
            "folders": {
                key: [entry.content_hash, entry.fingerprint]
                for key, entry in sorted(self._current.items())
            },
        }
        try:
            replace_file(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
        except OSError:
            return


def load_folder_hashes(cache_dir: Path | None) -> FolderHashes:
    """The record under `cache_dir` (None: keep no record); an unusable one is ignored. On
    Windows, whose `st_ctime` is the creation time, no record is kept."""
    if cache_dir is None or os.name == "nt":
        return FolderHashes(None)
    path = cache_dir / FILE_NAME
    try:
        raw = json.loads(path.read_bytes())
        return FolderHashes(path, _parse(raw))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return FolderHashes(path)


def _parse(raw: Any) -> dict[str, _Recorded]:
    if (
        raw.get("format") != CACHE_FORMAT
        or raw.get("hash_format") != FOLDER_HASH_FORMAT
        or raw.get("mwaa-elt") != _own_version()
    ):
        return {}
    recorded = {}
    for key, (content_hash, fingerprint) in raw["folders"].items():
        if not isinstance(content_hash, str) or not isinstance(fingerprint, str):
            raise TypeError("not a recorded folder")
        recorded[str(key)] = _Recorded(content_hash, fingerprint)
    return recorded


def _own_version() -> str:
    try:
        return metadata.version("mwaa-elt")
    except metadata.PackageNotFoundError:
        return "-"
