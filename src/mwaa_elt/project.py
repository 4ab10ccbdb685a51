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

    @property
    def cache_dir(self) -> Path:
        """Local records that only save work (render's, the folder hashes'): safe to delete."""
        return self.root / "build" / ".cache"


def find_project(start: Path | None = None) -> Project:
    """The nearest folder at or above `start` (or $MWAA_ELT_PROJECT) holding Pulumi.yaml."""
    explicit = os.environ.get("MWAA_ELT_PROJECT")
    here = Path(explicit or start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        try:
            found = (folder / PROJECT_FILE).is_file() and (folder / "stacks").is_dir()
        except OSError as error:  # a name too long, a folder it may not look into...
            raise ConfigError(
                f"{folder}: cannot look for {PROJECT_FILE} there ({error.strerror}); run from "
                "the project, or pass --project-dir with a folder that can be read"
            ) from None
        if found:
            return Project(folder)
    raise ConfigError(
        f"{here}: not inside an mwaa-elt project (no {PROJECT_FILE} with a stacks/ folder here "
        "or above); run from the project, or pass --project-dir"
    )
