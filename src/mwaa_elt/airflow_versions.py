"""The Airflow versions Amazon MWAA runs and the Python of each: the one list the project keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AirflowRelease:
    """An Airflow version MWAA offers and the Python version of its image."""

    version: str
    python: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def constraints_url(self) -> str:
        return (
            "https://raw.githubusercontent.com/apache/airflow/"
            f"constraints-{self.version}/constraints-{self.python}.txt"
        )


# Each release's Python is its MWAA image's (requirements/mwaa/<version>/python-version, copied
# from aws/amazon-mwaa-docker-images); tests/check/test_mwaa_environments.py keeps the two in step.
# 2.9.2's image is vendored (an upgrade from it can be rehearsed) but MWAA no longer creates it.
MWAA_AIRFLOW_RELEASES: dict[str, AirflowRelease] = {
    release.version: release
    for release in (
        AirflowRelease("2.10.1", "3.11"),
        AirflowRelease("2.10.3", "3.11"),
        AirflowRelease("2.11.0", "3.12"),
        AirflowRelease("2.11.2", "3.12"),
        AirflowRelease("3.0.6", "3.12"),
        AirflowRelease("3.2.1", "3.12"),
        AirflowRelease("3.3.1", "3.12"),
    )
}


def airflow_release(version: str) -> AirflowRelease:
    """The MWAA release for `version`; KeyError when MWAA does not offer it."""
    return MWAA_AIRFLOW_RELEASES[version]


# Provider distributions MWAA installs with Airflow, by major line ("Apache Airflow provider
# packages installed on Amazon MWAA environments"); anything else must be in requirements.txt.
_MWAA_PROVIDERS_2 = [
    "amazon",
    "celery",
    "common-compat",
    "common-io",
    "common-sql",
    "fab",
    "ftp",
    "http",
    "imap",
    "postgres",
    "smtp",
    "sqlite",
]
MWAA_PREINSTALLED_PROVIDERS: dict[int, frozenset[str]] = {
    2: frozenset(f"apache-airflow-providers-{name}" for name in _MWAA_PROVIDERS_2),
    3: frozenset(f"apache-airflow-providers-{name}" for name in [*_MWAA_PROVIDERS_2, "standard"]),
}
