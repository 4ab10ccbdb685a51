"""Turn pydantic `ValidationError`s into located, concrete messages about YAML keys."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from mwaa_elt.spec import values
from mwaa_elt.spec.yaml_source import Mark, YamlDocument

# What a pattern means, in words an analyst can act on.
_PATTERNS: dict[str, str] = {
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
_TYPES = {
    "string_type": "text",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list ([a, b] or '- a' lines)",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "date_type": "a date YYYY-MM-DD",
    "float_type": "a number",
}


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def data_path(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """The part of pydantic's `loc` that exists in the YAML data (drops union tags)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
    return tuple(path)


def key_text(path: tuple[Any, ...]) -> str:
    """`tasks[2].athena.sql` for a path, as messages name keys."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model class whose fields are allowed at `loc` (a path of keys)."""
    model = root
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            found = _models_in(model.model_fields[part].annotation)
            if found:
                model = found[0]
    return model


def _describe(error: Any, root: type[BaseModel], data: Any) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1])
        allowed = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
        return f"unknown key '{loc[-1]}'; {hint}"
    if kind == "missing":
        model = model_at(root, loc[:-1])
        field = model.model_fields.get(str(loc[-1]))
        about = f" — {field.description}" if field is not None and field.description else ""
        return f"missing required key '{loc[-1]}'{about}"
    if kind in {"value_error", "assertion_error"}:
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in _TYPES:
        hint = ""
        if kind == "string_type" and isinstance(value, int | float | bool):
            hint = f"; quote it: '{str(value).lower() if isinstance(value, bool) else value}'"
        return f"expected {_TYPES[kind]}, got {_yaml_kind(value)}{hint}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        return f"{value!r} is not allowed; allowed: {expected}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"{value!r} is not valid; {_PATTERNS.get(pattern, f'expected the form {pattern}')}"
    if kind in {"greater_than_equal", "greater_than"}:
        return f"{value} is too small; the minimum is {ctx.get('ge', ctx.get('gt'))}"
    if kind in {"less_than_equal", "less_than"}:
        return f"{value} is too large; the maximum is {ctx.get('le', ctx.get('lt'))}"
    if kind in {"too_short", "string_too_short"}:
        minimum = ctx.get("min_length", 1)
        what = "item" if kind == "too_short" else "character"
        return f"must not be empty; give at least {minimum} {what}{'s' if minimum != 1 else ''}"
    if kind in {"too_long", "string_too_long"}:
        return f"is too long; at most {ctx.get('max_length')}"
    return f"{error['msg']} (got {_yaml_kind(value)})"


def located_messages(
    exc: ValidationError, root: type[BaseModel], doc: YamlDocument
) -> list[tuple[Mark, str]]:
    """(mark, message) for each error of `exc`, pointing at the offending key."""
    located: list[tuple[Mark, str]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = data_path(doc.data, loc)
        # An unknown key and a missing key are named in the message; point at their parent.
        if error["type"] == "extra_forbidden":
            path = data_path(doc.data, loc)
            mark = doc.mark(path)
            where = key_text(path[:-1])
        elif error["type"] == "missing":
            mark = doc.mark(path) if path else Mark(1, 1)
            where = key_text(path)
        else:
            mark = doc.mark(path) if path else Mark(1, 1)
            where = key_text(path)
        message = _describe(error, root, doc.data)
        located.append((mark, f"{where}: {message}" if where else message))
    return located
