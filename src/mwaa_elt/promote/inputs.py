"""Decide from inputs: which pipelines a promotion has to validate, render, bundle and gate.

A pipeline's inputs are its folder (the content hash its source bundle gets), the snapshot of
dag_templates/ it is rendered with, and what every pipeline of the stage shares — the mwaa-elt
code and version, the libraries and settings that shape a DAG file, the stage model's files:
the same list the render record counts (`render.cache.shared_inputs`), without this machine's
paths. Their digest is recorded with each release in the stage's manifest. A pipeline whose
digest equals the recorded one would render to the recorded files, so it costs one hash of its
folder; only the others are validated, rendered and gated. Of those, a pipeline that a
`mwaa-elt render` for the stage rendered from the same inputs (`render.cache.kept_renders`) is
taken from that render instead of being validated alone and rendered again; it is still bundled
and gated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import folder_content_hash
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.render.cache import KeptRender, shared_inputs
from mwaa_elt.spec.problems import ValidationReport
from mwaa_elt.spec.summary import SpecSummary, consistent
from mwaa_elt.stage import Stage

if TYPE_CHECKING:
    from mwaa_elt.promote.hash_cache import FolderHashes
    from mwaa_elt.spec.model import Pipeline

INPUTS_FORMAT = 1


def environment_digest(stage: Stage, stacks_dir: Path, project_root: Path) -> str:
    """Digest of the inputs every pipeline promoted into `stage` shares, templates aside."""
    parts = shared_inputs(stage, stacks_dir, project_root, portable=True)
    parts["inputs_format"] = INPUTS_FORMAT
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def inputs_hash(environment: str, source_hash: str, templates_hash: str) -> str:
    """The digest recorded as `Inputs.hash`: shared inputs, the pipeline's folder, templates."""
    text = f"{environment}\0{source_hash}\0{templates_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


def folder_hash(folder: Path) -> str:
    """The content hash the folder's source bundle would get (`bundle.build_bundle`)."""
    return folder_content_hash(folder)


def folder_hashes(specs: Sequence[Path], record: FolderHashes | None = None) -> dict[Path, str]:
    """`folder_hash` of each spec's folder; through `record` (`promote.hash_cache`), a folder
    whose files and subfolders stat as recorded is neither listed nor read."""
    folders = {spec.parent for spec in specs}
    if record is None:
        return {folder: folder_hash(folder) for folder in folders}
    return {folder: record.content_hash(folder) for folder in folders}


@dataclass(frozen=True)
class Selection:
    """The working tree's specs sorted by whether their inputs changed since the stage's record.

    `report` holds the specs validated anew; when it is not ok it covers every spec, exactly as
    `validate_paths` would, and nothing else is filled in.
    """

    report: ValidationReport
    changed: Mapping[str, Pipeline]  # selected pipelines to validate, render, bundle and gate
    kept: Mapping[str, tuple[Path, KeptRender]]  # selected pipelines a render vouches for, by
    # name: their spec and that render (to bundle and gate, not to render again)
    summaries: Mapping[str, tuple[str, SpecSummary]]  # name -> (spec relative path, summary)
    unchanged: tuple[str, ...]  # selected pipelines whose inputs match the manifest
    known: tuple[str, ...]  # every pipeline of the working tree
    hashes: Mapping[Path, str] = field(default_factory=dict)  # folder -> `folder_hash`, as computed


def select_working_tree(
    specs: Sequence[Path],
    pipelines_dir: Path,
    stages: dict[str, Stage],
    manifest: Manifest,
    environment: str,
    templates_hash: str,
    names: Sequence[str] | None = None,
    *,
    force: Collection[str] = (),
    hashed: Mapping[Path, str] | None = None,
    renders: Callable[[Sequence[Path]], Mapping[Path, KeptRender]] | None = None,
) -> Selection:
    """Hash each spec's folder, trust the specs whose inputs the manifest records unchanged, and
    validate the others together with the summaries of the trusted ones. Pipelines in `force`
    (e.g. whose DAG object is not the recorded one) are never trusted by the manifest. `hashed`:
    folder hashes already computed (`folder_hashes`). `renders`: of the specs the manifest does
    not vouch for, those an earlier render vouches for (`render.cache.kept_renders`); they are
    trusted too, and their render is handed on instead of being redone.

    ConfigError for `names` that name no pipeline.
    """
    recorded = {
        record.inputs.spec: (name, record.inputs)
        for name, record in manifest.pipelines.items()
        if record.inputs is not None and name not in force
    }
    folders: dict[Path, str] = dict(hashed or {})
    trusted: dict[Path, SpecSummary] = {}
    relative_of: dict[Path, str] = {}
    for spec in specs:
        relative = spec.relative_to(pipelines_dir).as_posix()
        relative_of[spec] = relative
        found = recorded.get(relative)
        if found is None:
            continue
        folder = spec.parent
        if folder not in folders:
            folders[folder] = folder_hash(folder)
        name, inputs = found
        if inputs.hash == inputs_hash(environment, folders[folder], templates_hash):
            trusted[spec] = SpecSummary(name, inputs.produces, inputs.after)
    kept_by_spec = dict(renders([s for s in specs if s not in trusted])) if renders else {}
    trusted.update((spec, kept.summary) for spec, kept in kept_by_spec.items())

    if len(trusted) == len(specs) and consistent(trusted.values()):
        report, summaries = ValidationReport(), dict(trusted)  # nothing to validate anew
    else:
        from mwaa_elt.spec.validate import validate_incremental

        validation = validate_incremental(list(specs), stages, trusted)
        report, summaries = validation.report, validation.summaries
    if not report.ok:
        return Selection(report, {}, {}, {}, (), ())
    known = sorted(summary.name for summary in summaries.values())
    wanted = set(names) if names else None
    if wanted is not None:
        unknown = sorted(wanted - set(known))
        if unknown:
            raise ConfigError(f"no pipeline named {', '.join(unknown)}; known: {', '.join(known)}")
    selected = set(known) if wanted is None else wanted
    fresh = report.pipelines
    by_name = {
        summary.name: (relative_of[spec], summary)
        for spec, summary in summaries.items()
        if summary.name in selected
    }
    changed = {name: fresh[name] for name in sorted(selected) if name in fresh}
    kept = {
        kept.summary.name: (spec, kept)
        for spec, kept in sorted(kept_by_spec.items())
        if kept.summary.name in selected and kept.summary.name not in fresh
    }
    unchanged = tuple(sorted(name for name in selected if name not in fresh and name not in kept))
    return Selection(report, changed, kept, by_name, unchanged, tuple(known), folders)
