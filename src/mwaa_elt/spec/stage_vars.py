"""Render-time stage variables: `{{ db.x }}`, `{{ lake.uri }}`… resolved per stage by mwaa-elt.

Every other `{{ }}` / `{% %}` belongs to Airflow at run time and is left byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from mwaa_elt.diagnostics import position
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
# Jinja's parser recurses once per nesting level: deep enough nesting is a RecursionError.
_TOO_DEEP = "nested too deeply to parse; Airflow could not render it either"


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


# Specs repeat a handful of expressions ({{ db.x }}, {{ ds }}) thousands of times, and parsing
# one costs far more than using the result: both caches are keyed by the expression's text.
@lru_cache(maxsize=4096)
def _names(inner: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse("{{" + inner + "}}")))
    except (TemplateSyntaxError, RecursionError):  # the text's syntax check reports both
        return frozenset()


@lru_cache(maxsize=4096)
def _tree(inner: str) -> nodes.Template | str:
    """The parsed `{{ inner }}` (never mutated by callers), or Jinja's syntax error message."""
    try:
        return _ENV.parse("{{" + inner + "}}")
    except TemplateSyntaxError as exc:
        return f"{exc.message}"
    except RecursionError:
        return _TOO_DEEP


def expressions(text: str) -> Iterator[Expression]:
    """Every `{{ ... }}` of `text`; names are the variables it reads (empty when unparsable)."""
    # Lines are counted from the previous match on, not from the start of the text for each
    # match: that was quadratic, a minute for a 1 MB SQL file full of {{ ds }}.
    line, line_start, counted = 1, 0, 0
    for match in _EXPRESSION.finditer(text):
        start = match.start()
        newlines = text.count("\n", counted, start)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted, start) + 1
        counted = start
        inner = match.group(1).strip("-")
        col = start - line_start + 1
        yield Expression(start, match.end(), inner, line, col, _names(inner))


def stage_context(stage: Stage) -> dict[str, dict[str, str]]:
    """The values of the render-time variables in `stage`."""
    return {
        "stage": {"name": stage.name},
        "db": dict(stage.glue_databases),
        "lake": {
            "bucket": stage.data_lake_bucket,
            "bucket_uri": stage.data_lake_bucket_uri,
            "uri": stage.data_lake_uri,
            "prefix": stage.data_lake_prefix,
        },
        "athena": {"workgroup": stage.athena_workgroup, "results_uri": stage.athena_results_uri},
    }


@dataclass(frozen=True)
class _StageFacts:
    """What the checks and substitutions ask of one stage, derived once per Stage object."""

    stage: Stage  # held, so the id keying it cannot be reused by another object meanwhile
    context: dict[str, dict[str, str]]
    databases: tuple[tuple[str, str, re.Pattern[str]], ...]  # (logical, real, finder)
    bucket: str
    bucket_pattern: re.Pattern[str]
    values: dict[str, str | BaseException] = field(default_factory=dict)  # inner -> outcome


_FACTS: dict[int, _StageFacts] = {}


def _facts(stage: Stage) -> _StageFacts:
    # Stage properties are computed on every access; thousands of texts ask the same ones.
    found = _FACTS.get(id(stage))
    if found is not None and found.stage is stage:
        return found
    if len(_FACTS) >= 64:
        _FACTS.clear()
    databases = tuple(
        (logical, real, re.compile(rf"(?<![A-Za-z0-9_]){re.escape(real)}(?![A-Za-z0-9_])", re.I))
        for logical, real in stage.glue_databases.items()
    )
    bucket = stage.data_lake_bucket
    facts = _StageFacts(
        stage=stage,
        context=stage_context(stage),
        databases=databases,
        bucket=bucket,
        bucket_pattern=re.compile(rf"(?<![a-z0-9.-]){re.escape(bucket)}(?![a-z0-9.-])"),
    )
    _FACTS[id(stage)] = facts
    return facts


def _known_databases(stages: Iterable[Stage]) -> list[str]:
    known: dict[str, None] = {}
    for stage in stages:
        known.update(dict.fromkeys(stage.glue_databases))
    return list(known)


_REFERENCES: dict[tuple[Any, ...], tuple[tuple[Stage, ...], tuple[str, ...]]] = {}


def _reference_problems(expr: Expression, stages: Mapping[str, Stage]) -> list[str]:
    """Static checks of one render-time expression against every stage."""
    # A pure function of the expression's text and the stages; the entry holds the stages, so
    # the ids in its key cannot be reused by other objects while it exists.
    held = tuple(stages.values())
    key = (expr.inner, tuple(stages), tuple(map(id, held)))
    found = _REFERENCES.get(key)
    if found is None:
        if len(_REFERENCES) >= 4096:
            _REFERENCES.clear()
        found = (held, tuple(_check_references(expr, stages)))
        _REFERENCES[key] = found
    return list(found[1])


def _check_references(expr: Expression, stages: Mapping[str, Stage]) -> list[str]:
    runtime = sorted(expr.names - set(RESERVED))
    if runtime:
        used = ", ".join(sorted(expr.names & set(RESERVED)))
        return [
            f"'{{{{{expr.inner}}}}}' mixes render-time ({used}) and run-time "
            f"({', '.join(runtime)}) variables; split it into two {{{{ }}}}, e.g. "
            "{{ db.movielens }}.t_{{ ds_nodash }}"
        ]
    tree = _tree(expr.inner)
    if isinstance(tree, str):
        return [f"'{{{{{expr.inner}}}}}' is not a valid expression: {tree}"]
    if not _plain_reference(tree):
        return [
            f"'{{{{{expr.inner}}}}}' computes a value at render time; a stage variable is a "
            "plain reference such as {{ db.movielens }} or {{ lake.uri }}, with any other "
            "text outside the braces"
        ]
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


def _plain_reference(tree: nodes.Template) -> bool:
    """Whether `{{ ... }}` only reads stage variables, maybe joined to constants with `~`.

    Anything else (operators, filters, calls) would be computed by mwaa-elt in every stage, and
    `{{ lake.uri * 10**9 }}` would exhaust memory; a stage variable needs none of it.
    """
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return False
    return _reference(body[0].nodes[0])


def _reference(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Concat):
        return all(isinstance(n, nodes.Const) or _reference(n) for n in node.nodes)
    if isinstance(node, nodes.Getattr):
        return isinstance(node.node, nodes.Name)
    if isinstance(node, nodes.Getitem):
        return isinstance(node.node, nodes.Name) and isinstance(node.arg, nodes.Const)
    return isinstance(node, nodes.Name)  # a bare `db` is reported as needing an attribute


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


class _EvaluationError(Exception):
    """A remembered failure of evaluating an expression in a stage, with its original text."""


def _evaluate(inner: str, stage: Stage) -> str:
    # The outcome is a pure function of the expression and the stage (names are checked first:
    # only stage variables are in scope), so each pair is evaluated once.
    facts = _facts(stage)
    outcome = facts.values.get(inner)
    if outcome is None:
        try:
            context = {name: dict(group) for name, group in facts.context.items()}
            value = _compiled(inner)(**context)
            if isinstance(value, dict):
                raise ValueError("names a group of variables, not a value")
            outcome = str(value)
        except Exception as exc:  # the sandbox and StrictUndefined raise many kinds
            outcome = exc
        facts.values[inner] = outcome
    if isinstance(outcome, BaseException):
        raise _EvaluationError(str(outcome))
    return outcome


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
    # A substring test first, since most texts name no stage at all: lower() is exact for ASCII;
    # other text goes straight to the expressions' own Unicode case folding.
    folded = text.lower() if text.isascii() else None
    for stage in stages.values():
        facts = _facts(stage)
        for logical, real, finder in facts.databases:
            if folded is not None and real.isascii() and real.lower() not in folded:
                continue
            for match in finder.finditer(text):
                line, col = position(text, match.start())
                problems.append(
                    TextProblem(
                        line,
                        col,
                        f"hard-coded name '{match.group()}' of stage {stage.name}; "
                        f"write {{{{ db.{logical} }}}}",
                    )
                )
        bucket = facts.bucket
        for match in facts.bucket_pattern.finditer(text) if bucket in text else ():
            line, col = position(text, match.start())
            problems.append(
                TextProblem(
                    line,
                    col,
                    f"hard-coded name '{bucket}' of stage {stage.name}; write "
                    "{{ lake.uri }} (this stage's prefix) or {{ lake.bucket_uri }}",
                )
            )
    if "lake.bucket" in text:  # every match of _LAKE_PATH contains it
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
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return []  # without a tag Jinja's lexer sees one data token: nothing can fail
    if _simple_and_valid(text):
        return []
    return list(_jinja_syntax_problems(text))


# Inside `{{ }}`, what could make Jinja's lexer end the tag elsewhere than at the first `}}`.
_NOT_SIMPLE = re.compile(r"[{}'\"]")


def _simple_and_valid(text: str) -> bool:
    """True only when `text` certainly parses: no blocks or comments, and each `{{ }}` is one
    Jinja expression without strings or braces that parses on its own (cached per expression).

    Such a text is data and `{{ }}` tags side by side, each lexed from where it starts to the
    first `}}` (only a string or an unbalanced bracket could carry the tag past it, and an
    unbalanced one fails alone too), so the whole text parses exactly when each tag does.
    Anything else is left to the full parse, which alone words and locates errors.
    """
    if "{%" in text or "{#" in text:
        return False
    last = 0
    for match in _EXPRESSION.finditer(text):
        inner = match.group(1)
        if "{{" in text[last : match.start()] or _NOT_SIMPLE.search(inner):
            return False
        if not _parses_alone(inner):
            return False
        last = match.end()
    return "{{" not in text[last:]


@lru_cache(maxsize=4096)
def _parses_alone(inner: str) -> bool:
    try:
        _ENV.parse("{{" + inner + "}}")
    except Exception:  # syntax errors, RecursionError: the full parse reports them
        return False
    return True


@lru_cache(maxsize=256)
def _jinja_syntax_problems(text: str) -> tuple[TextProblem, ...]:
    # Validation asks twice about each SQL file (stage variables, then before parsing the SQL).
    try:
        _ENV.parse(text)
    except TemplateSyntaxError as exc:
        return (TextProblem(exc.lineno or 1, 1, f"Jinja template error: {exc.message}"),)
    except RecursionError:  # Jinja's parser recurses per nesting level
        tags = [i for i in (text.find("{{"), text.find("{%")) if i >= 0]
        line, col = position(text, min(tags, default=0))
        return (TextProblem(line, col, f"Jinja template error: {_TOO_DEEP}"),)
    return ()
