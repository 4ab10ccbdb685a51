"""A pipeline's folder holds regular files only, and what its bundle carries stays small.

A promotion bundles the spec and the files it references. A symbolic link, a device or a FIFO
in the folder would make that bundle (or a tool reading the folder) publish or block on
something outside the pipeline, so validation refuses them anywhere in the folder — referenced
or not — and never follows a link to look at what it points at.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mwaa_elt.spec.problems import Problem

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline

# The spec and every file it references, together. Each SQL or script file is at most 1 MiB
# (yaml_source.MAX_FILE_BYTES); a bundle is source code, not data: 4 MiB is far above the
# examples (a few KiB) and keeps a stage's bucket free of data files committed by mistake.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
# A walk of a folder that holds far more than a pipeline stops here (and says so).
MAX_FOLDER_ENTRIES = 10_000

_FIX_LINK = (
    "a pipeline folder holds regular files only, and mwaa-elt never follows a link; "
    "replace the link with a copy of the file, or delete it"
)


def discover_specs(root: Path) -> list[Path]:
    """Spec files under `root`: `<root>/<name>/<name>.yaml` and `<root>/<name>.yaml`.

    One listing of `root` and one existence check per folder (a glob of `*/*.yaml` lists every
    file of every pipeline folder). Sorted as paths are, by their parts below `root`."""
    found: list[tuple[str, ...]] = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.endswith(".yaml"):
                    found.append((entry.name,))
                spec = f"{entry.name}.yaml"
                if entry.is_dir() and os.path.lexists(os.path.join(entry.path, spec)):
                    found.append((entry.name, spec))
    except OSError:  # no such folder: no specs, as a glob finds none
        return []
    return [root.joinpath(*parts) for parts in sorted(found)]


def referenced_names(pipeline: Pipeline) -> tuple[str, ...]:
    """The SQL and script files the pipeline's tasks name, as written, in task order: what its
    bundle carries beside the spec."""
    return tuple(
        name
        for task in pipeline.tasks
        for attribute in ("sql_file", "script")
        if isinstance(name := getattr(task.step, attribute, None), str) and name
    )


def own_folder(spec: Path) -> bool:
    """True when the spec lives in a folder of its own (`<name>/<name>.yaml`)."""
    return spec.parent.name == spec.stem


def _kind(mode: int) -> str | None:
    """What a non-regular, non-directory entry is; None for regular files and folders."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _entry_problem(path: Path, mode: int) -> Problem | None:
    kind = _kind(mode)
    if kind is None:
        return None
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return Problem(path, 1, 1, f"{path.name} is {kind} (to {target}); {_FIX_LINK}")
    return Problem(
        path,
        1,
        1,
        f"{path.name} is {kind}; a pipeline folder holds regular files only (SQL, scripts, "
        "the spec); remove it",
    )


def folder_problems(spec: Path) -> list[Problem]:
    """Links, devices, FIFOs and sockets anywhere in the spec's own folder (never followed).

    A spec that shares its folder with others (`pipelines/<name>.yaml`) is checked by
    `path_problem` on the files it names instead, so a shared folder is not walked per spec.
    """
    problems: list[Problem] = []
    try:
        mode = os.lstat(spec).st_mode
    except OSError:
        return problems  # reported as unreadable by the spec's own checks
    problem = _entry_problem(spec, mode)
    if problem is not None:
        problems.append(problem)
    if not own_folder(spec):
        return problems
    if os.path.islink(spec.parent):  # the pipeline folder itself, e.g. pipelines/x -> ~/x
        target = os.readlink(spec.parent)
        problems.append(
            Problem(
                spec.parent,
                1,
                1,
                f"{spec.parent.name} is a symbolic link (to {target}); {_FIX_LINK}",
            )
        )
        return problems
    seen = 0
    pending = [spec.parent]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(folder, 1, 1, f"cannot list {folder}: {exc.strerror}"))
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                problems.append(
                    Problem(
                        spec.parent,
                        1,
                        1,
                        f"{spec.parent} holds more than {MAX_FOLDER_ENTRIES} files and folders; "
                        "a pipeline folder holds its spec, SQL and scripts: move the rest out",
                    )
                )
                return problems
            try:
                # The directory entry's type answers for folders and regular files (no system
                # call, links never followed); anything else is looked at closer.
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                    continue
                if entry.is_file(follow_symlinks=False):
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
                continue
            problem = _entry_problem(Path(entry.path), mode)
            if problem is not None:
                problems.append(problem)
    return problems


def path_problem(spec_dir: Path, rel: str) -> str | None:
    """Why the referenced file `rel` may not be read (a link or special file on its way), or None.

    Checks every component without following any link, so a link to a folder is caught too.
    """
    current = spec_dir
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return None  # missing: reported by the caller
        last = index == len(parts) - 1
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(current)
            except OSError:
                target = "?"
            link = "/".join(parts[: index + 1])
            return f"'{rel}': {link} is a symbolic link (to {target}); {_FIX_LINK}"
        if not last and not stat.S_ISDIR(mode):
            return None  # reported by the caller as not found
        if last and not stat.S_ISREG(mode):
            kind = _kind(mode) or "a folder"
            return f"'{rel}' is {kind}, not a regular file; name a .sql or script file"
    return None


def size_problem(spec: Path, files: Iterable[Path]) -> Problem | None:
    """A problem at the spec when it and the files it references exceed `MAX_BUNDLE_BYTES`."""
    total = 0
    counted: set[Path] = set()
    for file in [spec, *files]:
        if file in counted:
            continue
        counted.add(file)
        try:
            total += os.lstat(file).st_size
        except OSError:
            continue
    if total <= MAX_BUNDLE_BYTES:
        return None
    return Problem(
        spec,
        1,
        1,
        f"the spec and the {len(counted) - 1} file(s) it references hold {total:,} bytes; a "
        f"pipeline's bundle may hold at most {MAX_BUNDLE_BYTES:,} bytes (source code, not data): "
        "keep data in the lake and split very large SQL into several tasks",
    )
