"""Turn pydantic `ValidationError`s into concrete messages about YAML keys, one wording for specs,
SQL test files and stack files; located at the offending key when the document has marks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from mwaa_elt.diagnostics import Mark, key_text, model_at, model_fields, unknown_key_hint
from mwaa_elt.diagnostics.located_yaml import YamlDocument

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


def describe(
    error: Any,
    root: type[BaseModel],
    patterns: Mapping[str, str] | None = None,
    *,
    by_alias: bool = False,
    key_in_front: bool = False,
) -> str:
    """What is wrong, in words, for one error of `root`'s validation. `patterns` says what a
    field's regular expression means; `by_alias` when the file spells keys by alias;
    `key_in_front` when the message follows the full key, so an unknown or missing key is not
    named twice (stack files), rather than its parent (specs, located at the parent)."""
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1], by_alias=by_alias)
        allowed = list(model_fields(model, by_alias=by_alias))
        named = "" if key_in_front else f" '{loc[-1]}'"
        return f"unknown key{named}; {unknown_key_hint(str(loc[-1]), allowed)}"
    if kind == "missing":
        model = model_at(root, loc[:-1], by_alias=by_alias)
        field = model_fields(model, by_alias=by_alias).get(str(loc[-1]))
        about = f" — {field.description}" if field is not None and field.description else ""
        if key_in_front:
            return f"missing; this setting is required{about}"
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
        meaning = (patterns or {}).get(pattern, f"expected the form {pattern}")
        return f"{value!r} is not valid; {meaning}"
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
    exc: ValidationError,
    root: type[BaseModel],
    doc: YamlDocument,
    patterns: Mapping[str, str] | None = None,
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
        message = describe(error, root, patterns)
        located.append((mark, f"{where}: {message}" if where else message))
    return located
