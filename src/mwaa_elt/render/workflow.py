"""The `render` workflow of a project: validate every spec, render the chosen pipelines for a
stage (anew, or only what changed since the last render into a folder), write them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_elt.diagnostics import display_path
from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.render.cache import (
    IncrementalRender,
    load_record,
    record_path,
    render_incremental,
    save_record,
)
from mwaa_elt.render.files import WriteSummary, write_render
from mwaa_elt.render.result import RenderResult
from mwaa_elt.stage import Stage, load_all_stages

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline
    from mwaa_elt.spec.problems import ValidationReport


def not_rendered(report: ValidationReport) -> ConfigError:
    """The error listing every problem validation found, saying nothing was rendered."""
    return ConfigError(
        [f"{display_path(p.path)}:{p.line}:{p.col}: {p.message}" for p in report.problems]
        + ["nothing was rendered: fix the problems above (mwaa-elt validate)"]
    )


def stages_with(project: Project, stage: str) -> dict[str, Stage]:
    """Every stage of the project, after refusing an unknown `stage`."""
    stages = load_all_stages(project.stacks_dir)
    if stage not in stages:
        raise ConfigError(f"no stage '{stage}'; known: {', '.join(stages)}")
    return stages


def valid_pipelines(
    project: Project, stages: dict[str, Stage], names: list[str] | None
) -> dict[str, Pipeline]:
    """Every spec validated together; ConfigError with all problems, or the selected pipelines."""
    from mwaa_elt.spec import validate_paths
    from mwaa_elt.spec.targets import spec_targets

    everything, _ = spec_targets(project, None)
    report = validate_paths(everything, stages)
    if not report.ok:
        raise not_rendered(report)
    pipelines = report.pipelines
    if names:
        unknown = sorted(set(names) - set(pipelines))
        if unknown:
            raise ConfigError(
                f"no pipeline named {', '.join(unknown)}; known: {', '.join(sorted(pipelines))}"
            )
        pipelines = {name: pipelines[name] for name in sorted(names)}
    return pipelines


def render_stage(project: Project, stage: str, names: list[str] | None) -> RenderResult:
    """Validate every spec, then render the selected pipelines for `stage` (writes nothing)."""
    from mwaa_elt.render.generate import render_pipelines

    stages = stages_with(project, stage)
    selected = valid_pipelines(project, stages, names)
    return render_pipelines(
        selected, stages[stage], project.templates_dir, project_root=project.root
    )


@dataclass(frozen=True)
class Rendered:
    """A render written into its folder: what was written, and what was rendered or reused."""

    stage: str
    out_dir: Path
    result: RenderResult
    summary: WriteSummary
    rendered: tuple[str, ...]  # pipelines rendered anew
    reused: tuple[str, ...]  # pipelines whose files were kept from the last render
    record_file: Path
    record_error: str | None = None  # the record could not be saved: the next render redoes all


def render_to_folder(
    project: Project, stage: str, names: list[str] | None, out_dir: Path, *, force: bool
) -> Rendered:
    """Render `names` (default all) for `stage` into `out_dir`, redoing only what changed since
    the last render there (everything with `force`), all or nothing; then save the record."""
    stages = stages_with(project, stage)
    from mwaa_elt.spec.targets import spec_targets

    everything, _ = spec_targets(project, None)
    record_file = record_path(project.cache_dir, stage, out_dir)
    outcome: IncrementalRender = render_incremental(
        everything,
        stages,
        stages[stage],
        templates_dir=project.templates_dir,
        stacks_dir=project.stacks_dir,
        project_root=project.root,
        out_dir=out_dir,
        previous=None if force else load_record(record_file),
        names=names,
    )
    result = outcome.result
    if result is None:
        raise not_rendered(outcome.validation)
    summary = write_render(result, out_dir, pipelines=names or None)
    problem = None
    if outcome.record is not None:
        try:
            save_record(record_file, outcome.record)
        except OSError as exc:  # the render is written; only the next one loses its head start
            problem = f"could not save {display_path(record_file)}: {exc}"
    return Rendered(
        stage, out_dir, result, summary, outcome.rendered, outcome.reused, record_file, problem
    )
