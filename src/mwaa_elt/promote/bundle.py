"""A pipeline's source bundle: its folder as a deterministic tar.gz, addressed by content hash.

Promoting into a stage stores the bundle; promoting onward re-renders that bundle, never the
working tree, so what reaches prod is byte-for-byte the source that was tested before it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mwaa_elt.errors import ConfigError

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


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by posix path relative to it, sorted, litter excluded."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in _IGNORED_NAMES for part in relative.parts):
            continue
        if path.name.endswith(_IGNORED_SUFFIXES) or not path.is_file():
            continue
        files[relative.as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def content_hash(files: Mapping[str, bytes]) -> str:
    """sha256 over sorted (path, content) pairs: independent of archive format and mtimes."""
    hasher = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        hasher.update(path.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0")
        hasher.update(data)
    return hasher.hexdigest()


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
    """The bundle of a pipeline folder (spec, SQL, scripts)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: pipeline folder not found; cannot bundle its source")
    return pack(folder_files(folder))


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


@contextmanager
def read_bundle(data: bytes, *, expected_hash: str | None = None) -> Iterator[Path]:
    """Extract a bundle into a temporary folder, verify its hash, and remove it afterwards."""
    files = unpack(data)
    actual = content_hash(files)
    if expected_hash is not None and actual != expected_hash:
        raise ConfigError(
            f"source bundle content hash is {actual[:12]}, expected {expected_hash[:12]}; "
            "the stored bundle is corrupt or was replaced — re-promote from the previous stage"
        )
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-bundle-") as tmp:
        root = Path(tmp)
        for relative, content in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        yield root


def _safe_member(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError(f"bundle member {name!r} escapes the pipeline folder")
    return path.as_posix()
