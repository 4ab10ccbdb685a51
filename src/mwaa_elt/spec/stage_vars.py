"""Render-time stage variables: `{{ db.x }}`, `{{ lake.uri }}`… resolved per stage by mwaa-elt.

Every other `{{ }}` / `{% %}` belongs to Airflow at run time and is left byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import Stage

RESERVED = ("stage", "db", "lake", "athena")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "stage": ("name",),
    "lake": ("bucket", "bucket_uri", "uri", "prefix"),
    "athena": ("workgroup", "results_uri"),
}
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_BLOCK = re.compile(r"\{%-?\s*(\w*)(.*?)-?%\}", re.DOTALL)
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_RESERVED_IN_BLOCK = re.compile(r"(?<![\w.])(stage|db|lake|athena)\s*\.")
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class TextProblem:
    """A problem at a 1-based line and column of a text (a SQL file, a script, a field)."""

    line: int
    col: int
    message: str


@dataclass(frozen=True)
class Expression:
    """One `{{ ... }}` in a text, with its offsets and 1-based position."""

    start: int
    end: int
    inner: str
    line: int
    col: int
    names: frozenset[str]

    @property
    def render_time(self) -> bool:
        return bool(self.names & set(RESERVED))


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, col) of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def expressions(text: str) -> Iterator[Expression]:
    """Every `{{ ... }}` of `text`; names are the variables it reads (empty when unparsable)."""
    for match in _EXPRESSION.finditer(text):
        inner = match.group(1).strip("-")
        try:
            names = frozenset(meta.find_undeclared_variables(_ENV.parse("{{" + inner + "}}")))
        except TemplateSyntaxError:
            names = frozenset()
        line, col = position(text, match.start())
        yield Expression(match.start(), match.end(), inner, line, col, names)


def stage_context(stage: Stage) -> dict[str, dict[str, str]]:
    """The values of the render-time variables in `stage`."""
    prefix = stage.data_lake_write_prefixes[0]
    bucket_uri = f"s3://{stage.data_lake_bucket}/"
    return {
        "stage": {"name": stage.name},
        "db": dict(stage.glue_databases),
        "lake": {
            "bucket": stage.data_lake_bucket,
            "bucket_uri": bucket_uri,
            "uri": f"{bucket_uri}{prefix}",
            "prefix": prefix,
        },
        "athena": {"workgroup": stage.athena_workgroup, "results_uri": stage.athena_results_uri},
    }


def _known_databases(stages: Iterable[Stage]) -> list[str]:
    known: dict[str, None] = {}
    for stage in stages:
        known.update(dict.fromkeys(stage.glue_databases))
    return list(known)


def _reference_problems(expr: Expression, stages: Mapping[str, Stage]) -> list[str]:
    """Static checks of one render-time expression against every stage."""
    runtime = sorted(expr.names - set(RESERVED))
    if runtime:
        used = ", ".join(sorted(expr.names & set(RESERVED)))
        return [
            f"'{{{{{expr.inner}}}}}' mixes render-time ({used}) and run-time "
            f"({', '.join(runtime)}) variables; split it into two {{{{ }}}}, e.g. "
            "{{ db.movielens }}.t_{{ ds_nodash }}"
        ]
    try:
        tree = _ENV.parse("{{" + expr.inner + "}}")
    except TemplateSyntaxError as exc:
        return [f"'{{{{{expr.inner}}}}}' is not a valid expression: {exc.message}"]
    problems: list[str] = []
    attributed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        root = node.node
        if not isinstance(root, nodes.Name) or root.name not in RESERVED:
            continue
        attributed.add(id(root))
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if root.name == "db":
            known = _known_databases(stages.values())
            missing = [s for s, st in stages.items() if attr not in st.glue_databases]
            if len(missing) == len(stages):
                problems.append(
                    f"'{attr}' is not a Glue database of any stage; known: {', '.join(known)}"
                )
            elif missing:
                problems.append(
                    f"'{attr}' is not a Glue database of stage {', '.join(missing)}; add it to "
                    "glueDatabases in their stack files, or use another database"
                )
        elif attr not in ATTRIBUTES[root.name]:
            problems.append(
                f"'{root.name}.{attr}' is not a stage variable; {root.name} has: "
                f"{', '.join(ATTRIBUTES[root.name])}"
            )
    for name in tree.find_all(nodes.Name):
        if name.name in RESERVED and id(name) not in attributed:
            example = (
                "db.movielens" if name.name == "db" else f"{name.name}.{ATTRIBUTES[name.name][0]}"
            )
            problems.append(f"'{name.name}' needs an attribute: write {{{{ {example} }}}}")
    return problems


def stage_var_problems(
    text: str, stages: Mapping[str, Stage], *, scripts: bool = False
) -> list[TextProblem]:
    """Problems of the render-time variables of `text` in any of `stages`.

    With `scripts`, run-time `{{ }}` are refused too: script files go to S3 as they are and
    Airflow never renders them.
    """
    problems: list[TextProblem] = []
    for expr in expressions(text):
        if expr.render_time:
            found = _reference_problems(expr, stages)
            if not found:
                for stage in stages.values():
                    try:
                        _evaluate(expr.inner, stage)
                    except Exception as exc:  # the sandbox and StrictUndefined raise many kinds
                        found.append(f"'{{{{{expr.inner}}}}}' fails in stage {stage.name}: {exc}")
                        break
            problems.extend(TextProblem(expr.line, expr.col, m) for m in found)
        elif scripts:
            problems.append(
                TextProblem(
                    expr.line,
                    expr.col,
                    f"'{{{{{expr.inner}}}}}' is a run-time variable, but scripts are uploaded to "
                    "S3 as they are and Airflow does not render them; pass it in the task's "
                    "args (hive: ${name}, spark: sys.argv)",
                )
            )
    for block in _BLOCK.finditer(text):
        for ref in _RESERVED_IN_BLOCK.finditer(block.group(0)):
            line, col = position(text, block.start() + ref.start())
            problems.append(
                TextProblem(
                    line,
                    col,
                    f"stage variable '{ref.group(1)}' inside {{% %}} is not resolved; use "
                    "stage variables only as {{ ... }}",
                )
            )
    return problems


@lru_cache(maxsize=4096)
def _compiled(inner: str) -> Any:
    # Compiling a Jinja expression costs far more than evaluating it; specs repeat a handful.
    return _ENV.compile_expression(inner, undefined_to_none=False)


def _evaluate(inner: str, stage: Stage) -> str:
    value = _compiled(inner)(**stage_context(stage))
    if isinstance(value, dict):
        raise ValueError("names a group of variables, not a value")
    return str(value)


def resolve_stage_vars(text: str, stage: Stage, *, source: str, line_offset: int = 0) -> str:
    """`text` with every render-time `{{ }}` replaced by its value in `stage`.

    Run-time Jinja stays byte for byte; ConfigError names `source:line:col` of a bad reference.
    """
    errors: list[str] = []
    parts: list[str] = []
    last = 0
    for expr in expressions(text):
        if not expr.render_time:
            continue
        found = _reference_problems(expr, {stage.name: stage})
        value = ""
        if not found:
            try:
                value = _evaluate(expr.inner, stage)
            except Exception as exc:  # the sandbox and StrictUndefined raise many kinds
                found = [f"'{{{{{expr.inner}}}}}' fails in stage {stage.name}: {exc}"]
        errors.extend(f"{source}:{expr.line + line_offset}:{expr.col}: {m}" for m in found)
        parts.append(text[last : expr.start])
        parts.append(value)
        last = expr.end
    if errors:
        raise ConfigError(errors)
    parts.append(text[last:])
    return "".join(parts)


def hard_coded_problems(text: str, stages: Mapping[str, Stage]) -> list[TextProblem]:
    """Names of a stage written literally where a stage variable belongs."""
    problems: list[TextProblem] = []
    for stage in stages.values():
        for logical, real in stage.glue_databases.items():
            for match in re.finditer(
                rf"(?<![A-Za-z0-9_]){re.escape(real)}(?![A-Za-z0-9_])", text, re.IGNORECASE
            ):
                line, col = position(text, match.start())
                problems.append(
                    TextProblem(
                        line,
                        col,
                        f"hard-coded name '{match.group()}' of stage {stage.name}; "
                        f"write {{{{ db.{logical} }}}}",
                    )
                )
        bucket = stage.data_lake_bucket
        for match in re.finditer(rf"(?<![a-z0-9.-]){re.escape(bucket)}(?![a-z0-9.-])", text):
            line, col = position(text, match.start())
            problems.append(
                TextProblem(
                    line,
                    col,
                    f"hard-coded name '{bucket}' of stage {stage.name}; write "
                    "{{ lake.uri }} (this stage's prefix) or {{ lake.bucket_uri }}",
                )
            )
    problems.extend(_prefix_problems(text, stages))
    return sorted(set(problems), key=lambda p: (p.line, p.col, p.message))


_LAKE_PATH = re.compile(
    r"(?:\{\{-?\s*lake\.bucket_uri\s*-?\}\}|s3://\{\{-?\s*lake\.bucket\s*-?\}\}/)([A-Za-z0-9_.\-]*/?)"
)


def _prefix_problems(text: str, stages: Mapping[str, Stage]) -> list[TextProblem]:
    """A path under the lake bucket must start with a shared read prefix of some stage."""
    writes = {p: s.name for s in stages.values() for p in s.data_lake_write_prefixes}
    shared = sorted({p for s in stages.values() for p in s.config.data_lake.read_prefixes})
    problems = []
    for match in _LAKE_PATH.finditer(text):
        segment = match.group(1)
        line, col = position(text, match.start(1))
        if segment in writes:
            problems.append(
                TextProblem(
                    line,
                    col,
                    f"hard-coded prefix '{segment}' of stage {writes[segment]}; write "
                    "{{ lake.uri }} instead of {{ lake.bucket_uri }}" + segment,
                )
            )
        elif segment not in shared:
            problems.append(
                TextProblem(
                    line,
                    col,
                    f"prefix '{segment or '(none)'}' of the data lake belongs to no stage; "
                    f"shared prefixes: {', '.join(shared) or 'none'}; a stage's own data is "
                    "under {{ lake.uri }}",
                )
            )
    return problems


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def placeholder_text(text: str) -> str:
    """`text` with Jinja replaced so SQL parsers can read it; lines and columns are kept.

    `{{ x }}` becomes a same-length identifier (fine inside quotes and as a name); `{% %}`
    tags become blanks and only the first branch of an if survives.
    """
    chars = list(text)
    for match in _COMMENT.finditer(text):
        _blank(chars, match.start(), match.end())
    for match in _EXPRESSION.finditer(text):
        for i in range(match.start(), match.end()):
            if chars[i] != "\n":
                chars[i] = "j" if i == match.start() else "_"
    stack: list[list[Any]] = []
    for match in _BLOCK.finditer(text):
        keyword = match.group(1)
        _blank(chars, match.start(), match.end())
        if keyword in {"if", "for"}:
            stack.append([keyword, None])
        elif keyword in {"elif", "else"} and stack and stack[-1][1] is None:
            stack[-1][1] = match.end()
        elif keyword in {"endif", "endfor"} and stack:
            _, drop_from = stack.pop()
            if drop_from is not None:
                _blank(chars, drop_from, match.start())
    return "".join(chars)


def jinja_syntax_problems(text: str) -> list[TextProblem]:
    """A Jinja syntax error that would stop Airflow rendering `text` (e.g. `{{ ds }` )."""
    try:
        _ENV.parse(text)
    except TemplateSyntaxError as exc:
        return [TextProblem(exc.lineno or 1, 1, f"Jinja template error: {exc.message}")]
    return []
