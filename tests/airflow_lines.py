"""The Airflow version each major line runs in the project's stacks, and its MWAA environment.

Tests that load or run DAGs use these environments; `make test` builds them first, so a missing
one is an error that says how to build it, never a silent skip.
"""

from __future__ import annotations

from pathlib import Path

from mwaa_elt.airflow_environments import airflow_python, override_variable
from mwaa_elt.stage import load_all_stages

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_VERSION: dict[int, str] = {
    stage.airflow.major: stage.airflow.version
    for stage in sorted(load_all_stages(ROOT / "stacks").values(), key=lambda s: s.name)
}


def python_of_line(major: int) -> Path:
    """The Python of the MWAA environment of Airflow line `major` (ConfigError if unbuilt)."""
    return airflow_python(AIRFLOW_VERSION[major])


def environment_overrides() -> dict[str, str]:
    """The variables that point a child process at every line's environment."""
    return {
        override_variable(version): str(airflow_python(version))
        for version in AIRFLOW_VERSION.values()
    }
