"""Pure helpers for templated fields: no Airflow imports, no I/O, safe at DAG-parse time."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9!_.*'()/-]+")


def hive_partition(ds: str, column: str = "dt") -> str:
    """The Hive-style partition path of a run date, such as `dt=2024-05-01`."""
    return f"{column}={ds}"


def s3_key_safe(value: str) -> str:
    """`value` with characters S3 keys should avoid (a run id's '+' and ':') replaced by '-'."""
    return _UNSAFE.sub("-", value).strip("-")
