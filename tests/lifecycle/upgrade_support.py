"""Helpers the upgrade tests share."""

from __future__ import annotations

from pathlib import Path


def set_airflow_version(project: Path, stage: str, version: str) -> None:
    """Change the Airflow version in the scratch project's stack file of `stage`."""
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    lines = [
        f"  mwaa-elt:airflowVersion: {version}" if "mwaa-elt:airflowVersion:" in line else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
