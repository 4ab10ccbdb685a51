"""Retiring blue after a cutover: the stack file change that makes green the stage's own.

The change `mwaa-elt cutover finish` prints: the `cutover:` block's settings become the stage's
own keys (`airflowVersion`, `environmentClass`, and the sizing or options it overrode), the
block is removed, and `servingEnvironment: green` takes its place. The stage then derives
green's names (`<prefix>-<stage>-green`, `green/dags/`, `.mwaa-elt/green/`) for its own
environment, so the Pulumi program declares the same green resources under the same logical
names and no longer declares blue's. The edit is made on the file's lines, so every other line,
comment included, stays as it was; the result is validated before it is offered.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from mwaa_elt.diagnostics.located_yaml import load_yaml_text
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage.cutover_config import GREEN_SETTINGS
from mwaa_elt.stage.loader import STACK_FILE
from mwaa_elt.stage.names import GREEN, Stage
from mwaa_elt.stage.schema import NAMESPACE, StageConfig

SERVING_KEY = "servingEnvironment"


@dataclass(frozen=True)
class RetireChange:
    """The stack file before and after retiring blue, and the unified diff between them."""

    path: str
    before: str
    after: str

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


def retire_blue_change(stage: Stage, text: str, path: str) -> RetireChange:
    """The edit of `stage`'s stack file `text` that retires blue; ConfigError when the stage has
    no cutover block or the file is laid out so that the edit cannot be made safely."""
    cutover = stage.config.cutover
    if cutover is None:
        raise ConfigError(
            f"{path}: {NAMESPACE}:cutover: missing; retiring blue moves the cutover block's "
            "settings to the stage's own keys, and this stack has no block"
        )
    green = cutover.settings(stage.config)
    lines = text.splitlines(keepends=True)
    for field in GREEN_SETTINGS:
        if green[field] == getattr(stage.config, field):
            continue
        key = to_camel(field)
        found = _find(lines, key)
        if found is None:
            # After the stage's class (a required key), at its indentation.
            start, end = _span(lines, "environmentClass", path)
            lines[end:end] = _dump(key, green[field], _indent(lines[start]))
        else:
            start, end = _span(lines, key, path)
            lines[start:end] = _dump(key, green[field], _indent(lines[start]))
    if _find(lines, SERVING_KEY) is not None:  # an explicit `servingEnvironment: blue`
        start, end = _span(lines, SERVING_KEY, path)
        del lines[start:end]
    start, end = _span(lines, "cutover", path)
    indent = _indent(lines[start])
    lines[start:end] = [
        f"{indent}# Blue retired after the cutover: {stage.resource_prefix}-{GREEN} is the "
        "stage's own environment.\n",
        f"{indent}{NAMESPACE}:{SERVING_KEY}: {GREEN}\n",
    ]
    after = "".join(lines)
    _check(after, green, path)
    return RetireChange(path, text, after)


def _key_line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s*){re.escape(NAMESPACE)}:{re.escape(key)}:(\s|$)")


def _find(lines: list[str], key: str) -> int | None:
    pattern = _key_line(key)
    found = [index for index, line in enumerate(lines) if pattern.match(line)]
    return found[0] if len(found) == 1 else None


def _span(lines: list[str], key: str, path: str) -> tuple[int, int]:
    """The lines of `mwaa-elt:<key>` with its value (a nested block ends at the first line
    indented no deeper than the key; trailing blank and comment lines are not its own)."""
    start = _find(lines, key)
    if start is None:
        raise ConfigError(
            f"{path}: {NAMESPACE}:{key}: not found once as a line of its own; retiring blue "
            "edits the stack file's lines, so edit it by hand as `mwaa-elt cutover finish` "
            "describes"
        )
    depth = len(_indent(lines[start]))
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line.lstrip().startswith("#") and len(_indent(line)) <= depth:
            break
        end += 1
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip()[0] == "#"):
        end -= 1
    return start, end


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _dump(key: str, value: Any, indent: str) -> list[str]:
    text = yaml.safe_dump(
        {f"{NAMESPACE}:{key}": value}, default_flow_style=False, sort_keys=False, width=1000
    )
    return [f"{indent}{line}\n" for line in text.splitlines()]


def _check(after: str, green: dict[str, Any], path: str) -> None:
    """The edited file must describe green as the stage's own, with the settings it runs."""
    problem = f"{path}: the edit that retires blue did not give the expected stack file"
    doc, problems = load_yaml_text(after, STACK_FILE)  # the loader's reading: no duplicate keys
    if doc is None or not isinstance(doc.data, dict):
        raise ConfigError(f"{problem} ({'; '.join(p.message for p in problems)}); edit it by hand")
    try:
        raw = doc.data
        values = {
            str(key).partition(":")[2]: value
            for key, value in raw["config"].items()
            if str(key).startswith(f"{NAMESPACE}:")
        }
        config = StageConfig.model_validate(values)
    except (KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ConfigError(f"{problem} ({exc}); edit it by hand") from None
    settled = {field: getattr(config, field) for field in GREEN_SETTINGS}
    if config.cutover is not None or config.serving_environment != GREEN or settled != green:
        raise ConfigError(f"{problem}; edit it by hand")
