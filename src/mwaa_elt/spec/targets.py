"""Which specs a command covers: every spec of the project is validated together (cross-spec
rules need them all), and only the ones named are reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project
from mwaa_elt.spec.folder import discover_specs
from mwaa_elt.spec.problems import FileReport
from mwaa_elt.stage import load_all_stages


def spec_targets(project: Project, paths: list[Path] | None) -> tuple[list[Path], list[Path]]:
    """(every spec of the project plus the named ones, the named ones or all): specs are
    validated together, but only the named ones are reported."""
    everything = discover_specs(project.pipelines_dir) if project.pipelines_dir.is_dir() else []
    if not paths:
        return everything, everything
    targets: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = discover_specs(path)
            if not found:
                raise ConfigError(f"{path}: no pipeline specs (<name>/<name>.yaml) in this folder")
            targets.extend(found)
        elif path.exists():
            targets.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    resolved = {p.resolve() for p in everything}
    union = everything + [p for p in targets if p.resolve() not in resolved]
    return union, targets


@dataclass(frozen=True)
class TargetValidation:
    """The named specs' reports, from validating them with every spec of the project."""

    files: tuple[FileReport, ...]
    stages: int  # how many stages each spec was checked against

    @property
    def ok(self) -> bool:
        """No named spec has a problem (warnings are reported, never refused)."""
        return all(f.ok for f in self.files)


def validate_targets(project: Project, paths: list[Path] | None) -> TargetValidation:
    """Validate every spec of the project plus `paths` against every stage; report `paths`'
    specs (all of them when none are named)."""
    from mwaa_elt.spec.validate import validate_paths

    stages = load_all_stages(project.stacks_dir)
    everything, targets = spec_targets(project, paths)
    report = validate_paths(everything, stages)
    if not paths:  # every spec is a target
        return TargetValidation(tuple(report.files), len(stages))
    wanted = {p.resolve() for p in targets}
    return TargetValidation(
        tuple(f for f in report.files if f.path.resolve() in wanted), len(stages)
    )
