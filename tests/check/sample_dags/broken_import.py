"""Fails imports: the operator name does not exist in the Amazon provider."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.athena import AthenaQueryOperator  # noqa: F401
