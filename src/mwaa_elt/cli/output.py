"""What every command shares: the consoles, common options, JSON printing and short forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from mwaa_elt.project import Project, find_project

if TYPE_CHECKING:  # the stage model brings pydantic: imported by the commands that load one
    from mwaa_elt.stage import Stage

# No emoji codes: a message quoting ':smile:' from a spec must print it as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", "-C", help="Project folder (default: found from the cwd)."),
]
StageOption = Annotated[str, typer.Option("--stage", "-s", help="Stage name: dev, staging, prod.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def project_at(project_dir: Path | None) -> Project:
    """The project at `--project-dir`, or found from the working directory."""
    return find_project(project_dir)


def stage_at(project_dir: Path | None, name: str) -> Stage:
    """One stage of the project, validated."""
    from mwaa_elt.stage import load_stage

    return load_stage(project_at(project_dir).stacks_dir, name)


# What a command prints with --json: one JSON object.
JsonObject = dict[str, object]


def print_json(data: object) -> None:
    """`data` as indented JSON on standard output."""
    # Plain print: rich would wrap long lines and break the JSON for machines reading a pipe.
    print(json.dumps(data, indent=2))


def relative(path: Path) -> str:
    """A path as messages show it: relative to the working directory when under it."""
    from mwaa_elt.diagnostics import display_path

    return display_path(path)


def short(value: object, limit: int = 110) -> str:
    """A value on one line, cut to `limit` characters."""
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
