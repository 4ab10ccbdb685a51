"""A spec's validation errors as located messages: the shared translation
(`mwaa_elt.diagnostics.pydantic_errors`) with what the spec's patterns mean."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from mwaa_elt.diagnostics import Mark, key_text
from mwaa_elt.diagnostics.located_yaml import YamlDocument
from mwaa_elt.diagnostics.pydantic_errors import located_messages as _located_messages
from mwaa_elt.spec import values

__all__ = ["PATTERNS", "key_text", "located_messages"]

# What a pattern means, in words an analyst can act on.
PATTERNS: dict[str, str] = {
    values.IDENTIFIER: "use 1-64 lower-case letters, digits and '_', starting with a letter",
    values.SQL_NAME: "a column name is letters, digits and '_' only (no quotes, spaces or SQL)",
    values.DURATION: "write a number and a unit: 30s, 5m, 1h, 1d, or e.g. 1h30m",
    r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$": (
        "write <pipeline>.<dataset>, e.g. movielens_scifi.scifi_export"
    ),
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "expected an email address such as team@example.com",
    r"^[A-Za-z0-9_-]{1,256}$": "expected an SNS topic name (not an ARN): letters, digits, - and _",
    r"^emr-\d+\.\d+\.\d+$": "expected an EMR release label such as emr-7.5.0",
    r"^[a-z][a-z0-9-]*\.[a-z0-9]+$": "expected an EC2 instance type such as m5.xlarge",
    r"^j-[A-Z0-9]+$": "expected an EMR cluster id such as j-2AXXXXXXGAPLF",
    r"^[a-z][a-z0-9_.-]{0,63}$": "use lower-case letters, digits, '.', '-' and '_'",
    r"^spark\.[A-Za-z0-9_.-]+$": "a Spark setting starts with 'spark.', e.g. spark.executor.memory",
}


def located_messages(
    exc: ValidationError, root: type[BaseModel], doc: YamlDocument
) -> list[tuple[Mark, str]]:
    """(mark, message) for each error of `exc`, pointing at the offending key."""
    return _located_messages(exc, root, doc, PATTERNS)
