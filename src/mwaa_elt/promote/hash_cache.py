"""Pipeline folder hashes remembered by their files' metadata, as git's index remembers blobs.

A promotion decides from inputs (`promote.inputs`): it hashes every pipeline folder of the
working tree: at 1,000 pipelines, reading their 5,700 files took a quarter of a no-change
promotion. A folder whose files and subfolders have the same type, size, modification and change
times and inode number as when it was hashed holds the same bytes, so its recorded hash is used
instead: one lstat per recorded path, no listing, no read.

What makes that safe:
- a file added, removed or renamed changes the times of the folder that lists it (POSIX; git's
  untracked cache trusts the same), and every listed folder is recorded with its files;
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
from mwaa_elt.promote.bundle import FOLDER_HASH_FORMAT, folder_content_hash, folder_paths

CACHE_FORMAT = 2
RACY_NANOSECONDS = 2_000_000_000
FILE_NAME = "folder-hashes.json"
_SEPARATOR = "\0"  # never in a path


@dataclass(frozen=True)
class _Recorded:
    content_hash: str
    fingerprint: str  # digest of `_stats` of `paths`
    paths: tuple[str, ...]  # `bundle.folder_paths`

    def holds(self, folder: str) -> bool:
        """Whether `folder` still stats as recorded."""
        stats = _stats(folder, self.paths)
        return stats is not None and _digest(stats) == self.fingerprint


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
        known = self.recorded.get(key)
        if known is not None and known.holds(key):
            self.reused += 1
            self._current[key] = known
            return known.content_hash
        paths = folder_paths(folder)
        stats = _stats(key, paths)  # before the content: a change while it is read shows
        digest = folder_content_hash(folder)
        self.hashed += 1
        if stats is not None and _newest(stats) < began - RACY_NANOSECONDS:
            self._current[key] = _Recorded(digest, _digest(stats), tuple(paths))
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
                key: [entry.content_hash, entry.fingerprint, _SEPARATOR.join(entry.paths)]
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
    for key, (content_hash, fingerprint, paths) in raw["folders"].items():
        if not all(isinstance(text, str) for text in (content_hash, fingerprint, paths)):
            raise TypeError("not a recorded folder")
        recorded[str(key)] = _Recorded(content_hash, fingerprint, tuple(paths.split(_SEPARATOR)))
    return recorded


Stats = list[tuple[str, int, int, int, int, int]]


def _stats(folder: str, paths: tuple[str, ...] | list[str]) -> Stats | None:
    """(path, mode, size, modification and change time, inode) of each of `paths` under
    `folder`, links not followed; None when one is gone."""
    found = []
    for relative in paths:
        try:
            info = os.lstat(f"{folder}/{relative.rstrip('/')}" if relative else folder)
        except OSError:
            return None
        found.append(
            (relative, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        )
    return found


def _digest(stats: Stats) -> str:
    return hashlib.blake2b(repr(stats).encode(), digest_size=16).hexdigest()


def _newest(stats: Stats) -> int:
    return max((max(item[3], item[4]) for item in stats), default=0)


def _own_version() -> str:
    try:
        return metadata.version("mwaa-elt")
    except metadata.PackageNotFoundError:
        return "-"
