"""`mwaa-elt airflow-envs`: local environments built from MWAA's image per Airflow version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mwaa_elt.cli.output import JsonFlag, ProjectDir, err, out, print_json, project_at
from mwaa_elt.stage import load_all_stages

airflow_envs_app = typer.Typer(
    help="Local environments built from MWAA's image for each Airflow version.",
    no_args_is_help=True,
)

VersionsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Airflow versions (default: those the project's stages run)."),
]


def _airflow_versions(project_dir: Path | None, versions: list[str] | None) -> list[str]:
    if versions:
        return versions
    stages = load_all_stages(project_at(project_dir).stacks_dir)
    return sorted({stage.airflow.version for stage in stages.values()})


@airflow_envs_app.command("build")
def airflow_envs_build(versions: VersionsArgument = None, project_dir: ProjectDir = None) -> None:
    """Build each environment from its lock (a no-op when it is current)."""
    from mwaa_elt import airflow_environments
    from mwaa_elt.airflow_environments import uv_binary

    for version in _airflow_versions(project_dir, versions):
        env = airflow_environments.environment(version)
        with err.status(f"building {env.path.name} (Python {env.image.python_minor})"):
            built = airflow_environments.build(env, uv_binary())
        out.print(f"{env.path.name}: {'built' if built else 'up to date'}")


@airflow_envs_app.command("lock")
def airflow_envs_lock(
    versions: VersionsArgument = None,
    all_: Annotated[bool, typer.Option("--all", help="Every vendored MWAA image.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Resolve each environment under MWAA's constraints into its lock file."""
    from mwaa_elt import airflow_environments
    from mwaa_elt.airflow_environments import uv_binary
    from mwaa_elt.mwaa_images import vendored_versions

    chosen = vendored_versions() if all_ else _airflow_versions(project_dir, versions)
    for version in chosen:
        env = airflow_environments.environment(version)
        with err.status(f"resolving Airflow {version} under MWAA's constraints"):
            airflow_environments.lock(env, uv_binary())
        out.print(f"{env.lock_file.relative_to(env.root)}: written")


@airflow_envs_app.command("list")
def airflow_envs_list(json_: JsonFlag = False, project_dir: ProjectDir = None) -> None:
    """Each vendored MWAA image: its Python, and whether its environment is built and current."""
    from mwaa_elt import airflow_environments
    from mwaa_elt.mwaa_images import vendored_versions

    rows: list[dict[str, str | bool]] = []
    for version in vendored_versions():
        env = airflow_environments.environment(version)
        rows.append(
            {
                "airflow_version": version,
                "python_version": env.image.python_version,
                "path": str(env.path),
                "locked": env.lock_file.is_file(),
                "current": airflow_environments.is_current(env),
            }
        )
    if json_:
        print_json(rows)
        return
    table = Table("Airflow", "Python", "locked", "environment")
    for row in rows:
        state = "current" if row["current"] else "not built"
        table.add_row(
            str(row["airflow_version"]), str(row["python_version"]), str(row["locked"]), state
        )
    out.print(table)
