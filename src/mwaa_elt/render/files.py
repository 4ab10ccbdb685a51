"""Write a render all at once: build the new folder beside the old one, then swap them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mwaa_elt.render.result import RenderResult

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class WriteSummary:
    """What `write_render` changed in the output folder, by path relative to it."""

    out_dir: Path
    written: tuple[str, ...]  # new or changed files
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]  # files of the previous render that no spec produces any more

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def _read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (symlinked folders are not entered), by posix relative path."""
    if not folder.is_dir():
        return {}
    found: dict[str, bytes] = {}
    for current, _, names in os.walk(folder):
        prefix = Path(current).relative_to(folder).as_posix()
        for name in names:
            path = os.path.join(current, name)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[name if prefix == "." else f"{prefix}/{name}"] = handle.read()
    return found


def _safe_relative(relative: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise ValueError(f"{relative!r} is not a path inside the output folder")
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic rename (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def _swap_in(staging: Path, out_dir: Path) -> Path | None:
    """Put `staging` at `out_dir`; return the folder now holding the old output, to delete."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return None
    if _exchange(staging, out_dir):
        return staging
    # Two renames: if the second fails, the first is undone, so the old output stays in place.
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    return old


def owner(relative: str) -> str | None:
    """The pipeline a rendered file belongs to: `dags/<name>.py`, `scripts/<name>/...`."""
    parts = PurePosixPath(relative).parts
    if len(parts) == 2 and parts[0] == "dags":
        return PurePosixPath(parts[1]).stem
    if len(parts) > 2 and parts[0] == "scripts":
        return parts[1]
    return None


def write_render(
    result: RenderResult, out_dir: Path, *, pipelines: Collection[str] | None = None
) -> WriteSummary:
    """Make `out_dir` hold exactly `result.files`, all or nothing; unchanged output is not touched.

    With `pipelines`, only those pipelines' files are replaced and the rest of `out_dir` is kept.
    On any failure the previous contents of `out_dir` stay exactly as they were.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder")
    previous = _read_tree(out_dir)
    for relative in result.files:
        _safe_relative(relative)
    files = dict(result.files)
    if pipelines is not None:
        chosen = set(pipelines)
        for relative, data in previous.items():
            if relative not in files and owner(relative) not in chosen:
                files[relative] = data
    summary = WriteSummary(
        out_dir=out_dir,
        written=tuple(p for p, data in files.items() if previous.get(p) != data),
        unchanged=tuple(p for p, data in files.items() if previous.get(p) == data),
        removed=tuple(sorted(set(previous) - set(files))),
    )
    if out_dir.is_dir() and not summary.changed:
        return summary
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary folder
        for relative, data in files.items():
            path = staging.joinpath(*_safe_relative(relative).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        old = _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return summary
