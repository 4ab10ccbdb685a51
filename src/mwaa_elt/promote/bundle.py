"""A pipeline's source bundle: its folder as a deterministic tar.gz, addressed by content hash.

Promoting into a stage stores the bundle; promoting onward re-renders that bundle, never the
working tree, so what reaches prod is byte-for-byte the source that was tested before it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mwaa_elt.errors import ConfigError
from mwaa_elt.spec.folder import MAX_BUNDLE_BYTES, path_problem, referenced_names

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline

# Files that never belong in a bundle: editor, OS and interpreter litter.
_IGNORED_NAMES = {".DS_Store", "__pycache__", ".ipynb_checkpoints"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


@dataclass(frozen=True)
class Bundle:
    """A pipeline folder's files, the hash of their content and the archive holding them."""

    source_hash: str
    data: bytes

    def key(self, bundles_prefix: str) -> str:
        """The content-addressed S3 key of this bundle under `bundles_prefix`."""
        return bundle_key(bundles_prefix, self.source_hash)


def bundle_key(bundles_prefix: str, source_hash: str) -> str:
    """Where the bundle with `source_hash` lives in a stage's bucket."""
    return f"{bundles_prefix}{source_hash}.tar.gz"


def _read_regular(path: str | Path) -> bytes:
    """The bytes of `path`, refusing a symbolic link or anything but a regular file."""
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot bundle it ({exc.strerror}); a bundle holds regular files only, "
            "never a symbolic link"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError(f"{path}: not a regular file; a bundle holds regular files only")
        return handle.read()


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by posix path relative to it, sorted, litter excluded.

    Links are never followed: a symbolic link, a FIFO or a device anywhere is a ConfigError.
    """
    return {relative: _read_regular(path) for relative, path in _regular_files(folder)}


# Raise when what `folder_content_hash` digests changes: records of its hashes are then dropped.
FOLDER_HASH_FORMAT = 1


def folder_content_hash(folder: Path) -> str:
    """`content_hash(folder_files(folder))`, reading one file at a time."""
    hasher = hashlib.sha256()
    for relative, path in _regular_files(folder):
        data = _read_regular(path)
        hasher.update(_file_header(relative, data))
        hasher.update(data)
    return hasher.hexdigest()


def _regular_files(folder: Path) -> list[tuple[str, str]]:
    """(posix path relative to `folder`, path) of every file under it, sorted by the first,
    litter excluded; ConfigError for a symbolic link or special file anywhere."""
    return _walk(folder)[0]


def folder_paths(folder: Path) -> list[str]:
    """What `folder_content_hash` depends on, relative to `folder`: every folder it lists
    ("" for `folder` itself, the others ending in "/") and every file it reads, in the order it
    reads them. A file added, removed or renamed changes the listed folder's times."""
    files, folders = _walk(folder)
    return folders + [relative for relative, _ in files]


def _walk(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The files `_regular_files` lists, and the folders listed to find them (sorted; litter
    folders are not listed). One scandir per folder: the entries' types come with the listing,
    no stat per file."""
    found: list[tuple[str, str]] = []
    listed: list[str] = []
    pending = [(os.fspath(folder), "")]
    while pending:
        top, prefix = pending.pop()
        listed.append(prefix)
        with os.scandir(top) as entries:
            for entry in entries:
                name = entry.name
                if name in _IGNORED_NAMES:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{prefix}{name}/"))
                elif not entry.is_file(follow_symlinks=False):
                    raise ConfigError(
                        f"{entry.path}: a symbolic link or special file; a bundle holds regular "
                        "files only"
                    )
                elif not name.endswith(_IGNORED_SUFFIXES):
                    found.append((prefix + name, entry.path))
    found.sort()
    listed.sort()
    return found, listed


def pipeline_files(spec: Path, referenced: Iterable[str]) -> dict[str, bytes]:
    """The spec (as `<name>.yaml`) and the files it references, by path relative to its folder.

    Exactly what the pipeline needs, nothing else in its folder; links are never followed and
    the total is capped at `MAX_BUNDLE_BYTES` (validation refuses both first).
    """
    folder = spec.parent
    files = {spec.name: _read_regular(spec)}
    for rel in referenced:
        posix = PurePosixPath(rel.replace("\\", "/"))
        relative = _safe_member(posix.as_posix())
        problem = path_problem(folder, relative)
        if problem is not None:
            raise ConfigError(f"{spec}: {problem}")
        files[relative] = _read_regular(folder / relative)
    total = sum(len(data) for data in files.values())
    if total > MAX_BUNDLE_BYTES:
        raise ConfigError(
            f"{spec}: the bundle would hold {total:,} bytes, more than {MAX_BUNDLE_BYTES:,}"
        )
    return dict(sorted(files.items()))


def content_hash(files: Mapping[str, bytes]) -> str:
    """sha256 over sorted (path, content) pairs: independent of archive format and mtimes."""
    hasher = hashlib.sha256()
    for path in sorted(files):
        hasher.update(_file_header(path, files[path]))
        hasher.update(files[path])
    return hasher.hexdigest()


def _file_header(path: str, data: bytes) -> bytes:
    """What `content_hash` digests before a file's bytes: its path and length."""
    return path.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0"


def pack(files: Mapping[str, bytes]) -> Bundle:
    """A deterministic tar.gz of `files`: sorted, mtime 0, no owners, mode 0644."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(_safe_member(path))
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    compressed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return Bundle(source_hash=content_hash(files), data=compressed)


def build_bundle(folder: Path) -> Bundle:
    """The bundle of a whole folder (the DAG templates), links refused."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: folder not found; cannot bundle it")
    return pack(folder_files(folder))


def pipeline_bundle(pipeline: Pipeline) -> Bundle:
    """The bundle of a pipeline: its spec and the SQL and scripts its tasks name."""
    if pipeline.source is None:
        raise ConfigError(f"pipeline {pipeline.pipeline} has no spec file to bundle")
    return pack(pipeline_files(pipeline.source, referenced_names(pipeline)))


def unpack(data: bytes) -> dict[str, bytes]:
    """The files of a bundle, refusing absolute paths, `..` and anything but regular files."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files: dict[str, bytes] = {}
            for member in tar.getmembers():
                if not member.isfile():
                    raise ConfigError(f"bundle member {member.name!r} is not a regular file")
                extracted = tar.extractfile(member)
                assert extracted is not None  # regular files always extract
                files[_safe_member(member.name)] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ConfigError(f"source bundle is not a readable tar.gz: {error}") from None
    return dict(sorted(files.items()))


def unpack_verified(data: bytes, expected_hash: str | None) -> dict[str, bytes]:
    """`unpack`, refusing a bundle whose content hash is not `expected_hash` (when given)."""
    files = unpack(data)
    actual = content_hash(files)
    if expected_hash is not None and actual != expected_hash:
        raise ConfigError(
            f"source bundle content hash is {actual[:12]}, expected {expected_hash[:12]}; "
            "the stored bundle is corrupt or was replaced — re-promote from the previous stage"
        )
    return files


def _safe_member(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError(f"bundle member {name!r} escapes the pipeline folder")
    return path.as_posix()
