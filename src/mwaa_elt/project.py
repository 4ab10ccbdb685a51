"""Where a project's parts live: found from the working directory, like git finds its repository."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mwaa_elt.errors import ConfigError

PROJECT_FILE = "Pulumi.yaml"


@dataclass(frozen=True)
class Project:
    """The folders of an mwaa-elt project."""

    root: Path

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @property
    def templates_dir(self) -> Path:
        return self.root / "dag_templates"

    @property
    def environment_dir(self) -> Path:
        return self.root / "infra" / "environment"

    def build_dir(self, stage: str) -> Path:
        return self.root / "build" / stage


def find_project(start: Path | None = None) -> Project:
    """The nearest folder at or above `start` (or $MWAA_ELT_PROJECT) holding Pulumi.yaml."""
    explicit = os.environ.get("MWAA_ELT_PROJECT")
    here = Path(explicit or start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file() and (folder / "stacks").is_dir():
            return Project(folder)
    raise ConfigError(
        f"{here}: not inside an mwaa-elt project (no {PROJECT_FILE} with a stacks/ folder here "
        "or above); run from the project, or pass --project-dir"
    )


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is under it, as messages show it."""
    # abspath first: a problem may be about a symbolic link, which resolve() would follow.
    here = Path.cwd().resolve()
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        try:
            return str(candidate.relative_to(here))
        except ValueError:
            continue
    return str(path)


def spec_targets(project: Project, paths: list[Path] | None) -> tuple[list[Path], list[Path]]:
    """(every spec of the project plus the named ones, the named ones or all): specs are
    validated together, but only the named ones are reported."""
    from mwaa_elt.spec import discover_specs

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
