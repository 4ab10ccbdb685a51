"""Airflow plugin of the mwaa-elt platform: Jinja macros the generated DAGs use.

MWAA unpacks plugins.zip into the plugins folder, which Airflow puts on sys.path; this package
works on the Airflow 2.11 and 3.0 lines alike and has no dependency beyond Airflow.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mwaa_elt_plugins.macros import hive_partition, s3_key_safe


class MwaaEltPlugin(AirflowPlugin):
    """Registers the platform's macros as `{{ macros.mwaa_elt.<name>(...) }}`."""

    name = "mwaa_elt"
    # Airflow reads the class attribute, and its base class declares it a list.
    macros = [hive_partition, s3_key_safe]  # noqa: RUF012
