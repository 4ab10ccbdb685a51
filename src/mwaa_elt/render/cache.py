"""Render only what changed: a record, per output folder, of what each pipeline was made from.

A pipeline's files are reused when everything shared (stack files, templates, the mwaa-elt code,
the libraries that shape the output, the stage and folders) hashes as recorded, its spec and
every file the spec references hash as recorded, and its files in the output folder still hold
the recorded bytes. Anything else is rendered anew. Validation is spec/'s (`validate_trusting`):
the cache only records and compares inputs, and hands it the summaries it still vouches for.
A record that is missing, unreadable or malformed is ignored.

A promotion reuses what a record vouches for in the same way (`kept_renders`): a pipeline whose
render into some folder is still what its inputs would give is neither validated alone nor
rendered again; the record also keeps what promotion needs besides the files (the file names
its bundle carries, its unchecked SQL).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import mwaa_elt
from mwaa_elt.errors import ConfigError
from mwaa_elt.files import replace_file
from mwaa_elt.render.format import ruff_command, ruff_settings
from mwaa_elt.render.result import (
    DAGS_DIR,
    RENDERER_VERSION,
    SCRIPTS_DIR,
    RenderedPipeline,
    RenderResult,
    templates_digest,
)
from mwaa_elt.spec.folder import own_folder, referenced_names
from mwaa_elt.spec.problems import ValidationReport
from mwaa_elt.spec.summary import SpecSummary, validate_trusting
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline

# 2: the output folder, and each entry's bundle file names and unchecked SQL (for promotion);
# 3: the modules each DAG file imports (for promotion's package gate).
RECORD_FORMAT = 3
# Libraries whose version can change what validation accepts or what a DAG file says.
_LIBRARIES = (
    "jinja2",
    "pydantic",
    "pydantic-core",
    "pyyaml",
    "sqlglot",
    "sqlglotc",
    "ruff",
    "detect-secrets",
)
_MISSING = "missing"


@dataclass(frozen=True)
class RecordEntry:
    """One spec in the record: its inputs' digest, the files it references, what it rendered."""

    inputs: str
    files: tuple[str, ...]  # referenced files, relative to the project root, posix
    summary: SpecSummary
    rendered: RenderedPipeline | None  # None: not in the output folder
    outputs: Mapping[str, str]  # output path -> sha256 of its bytes
    named: tuple[str, ...]  # the files the tasks name, as written (`referenced_names`)
    unchecked: tuple[str, ...]  # `spec.analysis.unchecked_sql` of the pipeline


@dataclass(frozen=True)
class RenderRecord:
    """What one output folder was rendered from; `key` digests everything specs share."""

    key: str
    specs: Mapping[str, RecordEntry]  # by spec path relative to the project root, posix
    out: str  # the output folder's real path


@dataclass(frozen=True)
class IncrementalRender:
    """A render that redid only what changed; `result` is None when validation found problems."""

    validation: ValidationReport  # the specs validated anew (all of them after a problem)
    result: RenderResult | None
    record: RenderRecord | None  # to save once `result` is written
    rendered: tuple[str, ...]  # pipelines rendered anew
    reused: tuple[str, ...]  # pipelines whose files in the output folder were kept


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Digests:
    """Digests of a file's bytes and of where it really is (swapping in a symlink is a change).

    Each folder's real path is looked up once, from its parent's: thousands of folders share
    the folders above them.
    """

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def _real_folder(self, folder: str) -> str:
        real = self._folders.get(folder)
        if real is None:
            parent, name = os.path.split(folder)
            if name in {"", ".", ".."} or not parent:
                real = os.path.realpath(folder)
            else:
                candidate = os.path.join(self._real_folder(parent), name)
                real = os.path.realpath(candidate) if os.path.islink(candidate) else candidate
            self._folders[folder] = real
        return real

    def _real(self, path: str) -> str:
        folder, name = os.path.split(path)
        candidate = os.path.join(self._real_folder(folder), name)
        if name in {"", ".", ".."} or os.path.islink(candidate):
            return os.path.realpath(candidate)
        return candidate

    def file(self, path: Path | str) -> str:
        try:
            real = self._real(os.fspath(path))
            with open(real, "rb") as handle:
                data = handle.read()
        except OSError:
            return _MISSING
        return _sha(real.encode("utf-8", "surrogateescape") + b"\0" + data)


def _file_digest(path: Path) -> str:
    return _Digests().file(path)


def _tree_digest(
    folder: Path, suffixes: tuple[str, ...] | None = None, *, portable: bool = False
) -> str:
    """Digest of the files under `folder`; `portable` counts their bytes only, not where this
    machine keeps them (a symlink swapped in is then no change)."""
    hasher = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or (suffixes and path.suffix not in suffixes):
                continue
            relative = path.relative_to(folder).as_posix()
            digest = _sha(path.read_bytes()) if portable else _file_digest(path)
            hasher.update(f"{relative}\0{digest}\0".encode())
    return hasher.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def shared_inputs(
    stage: Stage, stacks_dir: Path, project_root: Path, *, portable: bool = False
) -> dict[str, Any]:
    """Every input all pipelines of `stage` share but the templates: the mwaa-elt code and
    version, the libraries and settings that shape the output, the stage model's files.

    The render record and a promotion both decide from these. `portable` leaves out what only
    this machine has (paths, the interpreter's build), for a digest recorded in a stage's
    manifest and compared on another machine.
    """
    package = Path(mwaa_elt.__file__).parent
    parts: dict[str, Any] = {
        "renderer": RENDERER_VERSION,
        "mwaa-elt": _version("mwaa-elt"),
        # The version is not bumped for every change of the code: the code itself counts.
        "code": _tree_digest(package, (".py", ".j2", ".json"), portable=portable),
        "python": "{}.{}".format(*sys.version_info[:2]) if portable else sys.version,
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "ruff": ruff_settings() if portable else [*ruff_command(), *ruff_settings()],
        "stage": stage.name,
        "stacks": _tree_digest(stacks_dir, portable=portable),
        "project_file": (
            _sha(_read_or_empty(project_root / "Pulumi.yaml"))
            if portable
            else _file_digest(project_root / "Pulumi.yaml")
        ),
    }
    return parts


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return _MISSING.encode()


def environment_key(
    stage: Stage, templates_dir: Path, stacks_dir: Path, project_root: Path, out_dir: Path
) -> str:
    """Digest of every input all pipelines share; a change anywhere re-renders every pipeline."""
    return _KeyMaker(stage, templates_dir, stacks_dir, project_root).key(out_dir)


class _KeyMaker:
    """`environment_key` for any output folder, the shared inputs hashed once."""

    def __init__(
        self, stage: Stage, templates_dir: Path, stacks_dir: Path, project_root: Path
    ) -> None:
        self._parts = shared_inputs(stage, stacks_dir, project_root)
        self._parts.update(
            record=RECORD_FORMAT,
            templates=templates_digest(templates_dir),
            root=os.path.realpath(project_root),
        )

    def key(self, out_dir: Path | str) -> str:
        parts = {**self._parts, "out": os.path.realpath(out_dir)}
        return _sha(json.dumps(parts, sort_keys=True).encode())


def _record_name(stage: str, out_dir: Path | str) -> str:
    folder = _sha(os.path.realpath(out_dir).encode("utf-8", "surrogateescape"))[:16]
    return f"render-{stage}-{folder}.json"


def record_path(cache_dir: Path, stage: str, out_dir: Path) -> Path:
    """Where the record of rendering `stage` into `out_dir` is kept."""
    return cache_dir / _record_name(stage, out_dir)


# -- the record file ---------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _safe(relative: str) -> str:
    """`relative` when it is a plain path inside the output folder (a record may be tampered)."""
    parts = relative.split("/")
    if not relative or "\\" in relative or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(f"unsafe path {relative!r}")
    return relative


def _entry(raw: Any) -> RecordEntry:
    summary = SpecSummary(
        name=str(raw["name"]), produces=_strings(raw["produces"]), after=_strings(raw["after"])
    )
    rendered: RenderedPipeline | None = None
    outputs: dict[str, str] = {}
    if raw["render"] is not None:
        info = raw["render"]
        rendered = RenderedPipeline(
            name=summary.name,
            source=str(info["source"]),
            dag_path=_safe(str(info["dag_path"])),
            script_paths=tuple(_safe(p) for p in _strings(info["script_paths"])),
            content_hash=str(info["content_hash"]),
            dag_imports=_strings(info["dag_imports"]),
        )
        if rendered.dag_path != f"{DAGS_DIR}/{summary.name}.py" or not all(
            p.startswith(f"{SCRIPTS_DIR}/") for p in rendered.script_paths
        ):
            raise ValueError("output paths do not match the pipeline")
        outputs = {_safe(str(k)): str(v) for k, v in dict(info["outputs"]).items()}
        if set(outputs) != {rendered.dag_path, *rendered.script_paths}:
            raise ValueError("outputs do not match the rendered files")
    return RecordEntry(
        inputs=str(raw["inputs"]),
        files=_strings(raw["files"]),
        summary=summary,
        rendered=rendered,
        outputs=outputs,
        named=_strings(raw["named"]),
        unchecked=_strings(raw["unchecked"]),
    )


def load_record(path: Path) -> RenderRecord | None:
    """The record at `path`; None when there is none or it cannot be trusted to be one."""
    try:
        raw = json.loads(path.read_bytes())
        if raw.get("format") != RECORD_FORMAT:
            return None
        specs = {str(spec): _entry(entry) for spec, entry in dict(raw["specs"]).items()}
        return RenderRecord(key=str(raw["key"]), specs=specs, out=str(raw["out"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _entry_json(entry: RecordEntry) -> dict[str, Any]:
    render: dict[str, Any] | None = None
    if entry.rendered is not None:
        render = {
            "source": entry.rendered.source,
            "dag_path": entry.rendered.dag_path,
            "script_paths": list(entry.rendered.script_paths),
            "content_hash": entry.rendered.content_hash,
            "dag_imports": list(entry.rendered.dag_imports),
            "outputs": dict(sorted(entry.outputs.items())),
        }
    return {
        "inputs": entry.inputs,
        "files": list(entry.files),
        "name": entry.summary.name,
        "produces": list(entry.summary.produces),
        "after": list(entry.summary.after),
        "render": render,
        "named": list(entry.named),
        "unchecked": list(entry.unchecked),
    }


def save_record(path: Path, record: RenderRecord) -> None:
    """Write the record atomically (a reader sees the old one or the new one); OSError if not."""
    data = {
        "format": RECORD_FORMAT,
        "key": record.key,
        "out": record.out,
        "specs": {spec: _entry_json(entry) for spec, entry in sorted(record.specs.items())},
    }
    text = json.dumps(data, separators=(",", ":")).encode("utf-8")
    try:
        if path.read_bytes() == text:
            return  # a render that changed nothing leaves the record as it is
    except OSError:
        pass
    replace_file(path, text)


# -- rendering ---------------------------------------------------------------------------------


def _relative(path: Path, root: Path) -> str:
    text, prefix = os.fspath(path), os.fspath(root) + os.sep
    if text.startswith(prefix) and os.sep == "/":
        inside = text[len(prefix) :]
        if all(part not in {"", ".", ".."} for part in inside.split("/")):
            return inside
    return Path(os.path.relpath(path, root)).as_posix()


def _listing(spec: Path) -> str:
    """The names and kinds (file, folder, link, other) in the spec's own folder, unfollowed:
    validation refuses links and special files anywhere in it, referenced or not."""
    if not own_folder(spec):
        return ""
    entries: list[str] = []
    folders = [(os.fspath(spec.parent), "")]
    while folders:  # the kinds come from the directory entries: no stat per file
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as found:
                for entry in found:
                    name = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        entries.append(f"d:{name}")
                        folders.append((entry.path, name + os.sep))
                    else:
                        regular = entry.is_file(follow_symlinks=False)
                        entries.append(f"{'f' if regular else 'x'}:{name}")
        except OSError:  # gone or unreadable: listed as far as it could be read
            continue
    return "\n".join(sorted(entries))


def _inputs_digest(digests: _Digests, spec: Path, files: Sequence[str], root: Path) -> str:
    hasher = hashlib.sha256(digests.file(spec).encode())
    hasher.update(_listing(spec).encode("utf-8", "surrogateescape"))
    for relative in files:
        hasher.update(f"\0{relative}\0{digests.file(os.path.join(root, relative))}".encode())
    return hasher.hexdigest()


def _referenced(pipeline: Pipeline, root: Path) -> tuple[str, ...]:
    """Every file the spec names, as validation (posix separators) and rendering look it up."""
    folder = pipeline.source_dir
    found: set[str] = set()
    for name in referenced_names(pipeline):
        found.add(_relative(folder / PurePosixPath(name.replace("\\", "/")), root))
        found.add(_relative(folder / name, root))
    return tuple(sorted(found))


def _kept_outputs(entry: RecordEntry, out_dir: Path) -> dict[str, bytes] | None:
    """The entry's files as they are in `out_dir`, when every one holds the recorded bytes."""
    if entry.rendered is None:
        return None
    kept: dict[str, bytes] = {}
    for relative, digest in entry.outputs.items():
        try:
            data = out_dir.joinpath(*PurePosixPath(relative).parts).read_bytes()
        except OSError:
            return None
        if _sha(data) != digest:
            return None
        kept[relative] = data
    return kept


def render_incremental(
    specs: list[Path],
    stages: dict[str, Stage],
    stage: Stage,
    *,
    templates_dir: Path,
    stacks_dir: Path,
    project_root: Path,
    out_dir: Path,
    previous: RenderRecord | None,
    names: Sequence[str] | None = None,
) -> IncrementalRender:
    """Validate `specs` and render the selected pipelines (default: all) for `stage`.

    The result is byte for byte what `validate_paths` and `render_pipelines` give; `previous`
    (the record of the last render into `out_dir`) only spares work it still vouches for.
    Writes nothing. ConfigError for unknown `names` or a pipeline that cannot be rendered.
    """
    root = project_root
    key = environment_key(stage, templates_dir, stacks_dir, root, out_dir)
    old = previous.specs if previous is not None and previous.key == key else {}
    digests = _Digests()
    wanted = set(names) if names else None
    trusted: dict[Path, SpecSummary] = {}
    reusable: dict[str, tuple[RecordEntry, dict[str, bytes]]] = {}
    for spec in specs:
        entry = old.get(_relative(spec, root))
        if entry is None or _inputs_digest(digests, spec, entry.files, root) != entry.inputs:
            continue
        if wanted is None or entry.summary.name in wanted:
            kept = _kept_outputs(entry, out_dir)
            if kept is None:
                continue  # its files are needed and not there as recorded: render it anew
            reusable[entry.summary.name] = (entry, kept)
        trusted[spec] = entry.summary

    validation = validate_trusting(specs, stages, trusted)
    if not validation.report.ok:
        return IncrementalRender(validation.report, None, None, (), ())
    known = sorted(summary.name for summary in validation.summaries.values())
    if wanted is not None:
        unknown = sorted(wanted - set(known))
        if unknown:
            raise ConfigError(f"no pipeline named {', '.join(unknown)}; known: {', '.join(known)}")
    selected = sorted(wanted) if wanted is not None else known
    fresh = validation.report.pipelines
    # Digests of the specs validated anew, taken before rendering and compared after it: a file
    # edited meanwhile is left out of the record, so the next render does that spec again.
    before = {
        spec: _inputs_digest(digests, spec, _referenced(fresh[summary.name], root), root)
        for spec, summary in validation.summaries.items()
        if spec not in trusted
    }
    to_render = {name: fresh[name] for name in selected if name not in reusable}
    partial = RenderResult(stage.name, stage.airflow.version, {}, {})
    if to_render:
        from mwaa_elt.render.generate import render_pipelines

        partial = render_pipelines(to_render, stage, templates_dir, project_root=root)

    files: dict[str, bytes] = dict(partial.files)
    pipelines: dict[str, RenderedPipeline] = {}
    for name in selected:
        if name in reusable:
            entry, kept = reusable[name]
            assert entry.rendered is not None
            files.update(kept)
            pipelines[name] = entry.rendered
        else:
            pipelines[name] = partial.pipelines[name]
    result = RenderResult(
        stage=stage.name,
        airflow_version=stage.airflow.version,
        files=dict(sorted(files.items())),
        pipelines=pipelines,
    )

    if before:
        from mwaa_elt.spec.analysis import unchecked_sql
    entries: dict[str, RecordEntry] = {}
    for spec, summary in validation.summaries.items():
        relative = _relative(spec, root)
        if spec in trusted:
            kept_entry = old[relative]
            inputs, referenced = kept_entry.inputs, kept_entry.files
            named, unchecked = kept_entry.named, kept_entry.unchecked
        else:
            pipeline = fresh[summary.name]
            referenced = _referenced(pipeline, root)
            inputs = _inputs_digest(_Digests(), spec, referenced, root)
            if inputs != before[spec]:
                continue
            named, unchecked = referenced_names(pipeline), unchecked_sql(pipeline)
        rendered = pipelines.get(summary.name)
        outputs: dict[str, str] = {}
        if rendered is not None:
            for path in (rendered.dag_path, *rendered.script_paths):
                outputs[path] = _sha(result.files[path])
        entries[relative] = RecordEntry(
            inputs, referenced, summary, rendered, outputs, named, unchecked
        )
    return IncrementalRender(
        validation=validation.report,
        result=result,
        record=RenderRecord(key=key, specs=entries, out=os.path.realpath(out_dir)),
        rendered=tuple(sorted(to_render)),
        reused=tuple(sorted(reusable)),
    )


# -- reuse by a promotion ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeptRender:
    """A pipeline's render that a render record still vouches for, with its files' bytes."""

    summary: SpecSummary
    named: tuple[str, ...]  # the files its tasks name, as written: what its bundle carries
    unchecked: tuple[str, ...]  # `spec.analysis.unchecked_sql`
    rendered: RenderedPipeline
    files: Mapping[str, bytes]  # output path (dags/..., scripts/...) -> its bytes


def kept_renders(
    specs: Sequence[Path],
    stage: Stage,
    *,
    templates_dir: Path,
    stacks_dir: Path,
    project_root: Path,
    cache_dir: Path,
) -> dict[Path, KeptRender]:
    """Of `specs`, those a render for `stage` into any folder still vouches for, as that
    render itself would reuse them: every shared input (templates included) and the spec's own
    files hash as its record says, and its files in that folder hold the recorded bytes.
    Records are read newest first; one that cannot be trusted is passed over. Reads only.
    """
    if not specs:
        return {}
    pattern = re.compile(rf"render-{re.escape(stage.name)}-[0-9a-f]{{16}}\.json")
    try:
        candidates = [p for p in cache_dir.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return {}
    records = []
    for path in candidates:
        record = load_record(path)
        if record is None or path.name != _record_name(stage.name, record.out):
            continue
        try:
            records.append((path.stat().st_mtime_ns, path.name, record))
        except OSError:  # removed since it was read: the next render writes another
            continue
    if not records:
        return {}
    keys = _KeyMaker(stage, templates_dir, stacks_dir, project_root)
    digests = _Digests()
    pending = {_relative(spec, project_root): spec for spec in specs}
    kept: dict[Path, KeptRender] = {}
    for _, _, record in sorted(records, key=lambda r: (r[0], r[1]), reverse=True):
        if not pending or record.key != keys.key(record.out):
            continue
        out = Path(record.out)
        for relative in [r for r in pending if r in record.specs]:
            entry, spec = record.specs[relative], pending[relative]
            if entry.rendered is None:
                continue
            if _inputs_digest(digests, spec, entry.files, project_root) != entry.inputs:
                continue
            files = _kept_outputs(entry, out)
            if files is None:
                continue
            kept[spec] = KeptRender(
                entry.summary, entry.named, entry.unchecked, entry.rendered, files
            )
            del pending[relative]
    return kept
