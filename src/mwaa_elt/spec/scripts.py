"""EMR scripts: PySpark that compiles, and Hive scripts whose every variable is passed.

A Spark task's script is compiled (syntax and what `compile()` checks, e.g. `return` outside a
function) under the Python of each stage's Airflow line, as `airflow_versions` records it.
A Hive task's script gets its variables from the step's `args` (`hive -d name=value`, which
defines *hivevar* variables); every `${name}` it uses must be passed or SET in the script,
and the script must parse as HiveQL where sqlglot's hive (or spark) grammar can read it.
"""

from __future__ import annotations

import ast
import functools
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot.errors import ParseError, SqlglotError

from mwaa_elt.diagnostics import position
from mwaa_elt.spec.sql_parse import blank_comments
from mwaa_elt.spec.stage_vars import TextProblem
from mwaa_elt.stage import Stage

# ${name}, ${hivevar:name}, ${hiveconf:name}, ${env:NAME}, ${system:name}
_HIVE_VAR = re.compile(r"\$\{(?:(hivevar|hiveconf|env|system):)?([A-Za-z_][A-Za-z0-9_.]*)\}")
_SET = re.compile(r"^\s*set\s+(?:(hivevar|hiveconf):)?([A-Za-z_][A-Za-z0-9_.]*)\s*=", re.I | re.M)
# A hive grammar gap is not the analyst's error: a statement that either dialect reads passes.
_HIVE_DIALECTS = ("hive", "spark")


@dataclass(frozen=True)
class StagePython:
    """A Python version and the stages whose Airflow line runs it."""

    version: tuple[int, int]
    stages: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def stage_pythons(stages: Mapping[str, Stage]) -> list[StagePython]:
    """The distinct Python versions of the stages' Airflow lines (airflow_versions.py)."""
    by_version: dict[tuple[int, int], list[str]] = {}
    for name, stage in stages.items():
        major, minor = (int(x) for x in stage.airflow.python.split(".")[:2])
        by_version.setdefault((major, minor), []).append(name)
    return [StagePython(v, tuple(names)) for v, names in sorted(by_version.items())]


def python_problems(text: str, pythons: Sequence[StagePython]) -> list[TextProblem]:
    """Why the script does not compile under the stages' Pythons (one problem per error)."""
    return list(_python_problems(text, tuple(pythons)))


# Verdicts depend on the text only: copies of a script are compiled once per process.
@functools.lru_cache(maxsize=1024)
def _python_problems(text: str, pythons: tuple[StagePython, ...]) -> tuple[TextProblem, ...]:
    running = sys.version_info[:2]
    errors: dict[tuple[int, int, str], list[StagePython]] = {}
    outcome: dict[tuple[int, int], tuple[int, int, str] | None] = {}
    for python in pythons:
        # ast's feature_version can only go back from the running interpreter, never forward.
        version = min(python.version, running)
        if version not in outcome:
            outcome[version] = _compile_error(text, "<script>", version)
        error = outcome[version]
        if error is not None:
            errors.setdefault(error, []).append(python)
    problems = []
    for (line, col, message), where in errors.items():
        versions = "; ".join(f"{p.text} for stage {', '.join(p.stages)}" for p in where)
        problems.append(
            TextProblem(
                line,
                col,
                f"this PySpark script does not compile under Python {versions}: {message}; "
                "fix it — spark-submit would fail on the cluster",
            )
        )
    return tuple(problems)


def _compile_error(
    text: str, filename: str, version: tuple[int, int]
) -> tuple[int, int, str] | None:
    try:
        tree = ast.parse(text, filename=filename, feature_version=version)
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or 1, max(exc.offset or 1, 1), str(exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return 1, 1, f"it cannot be compiled ({exc})"
    return None


def hive_variable_problems(text: str, passed: Sequence[str], label: str) -> list[TextProblem]:
    """Every `${var}` of a Hive script that neither the step's args nor a SET defines."""
    code = blank_comments(text)
    hivevars = set(passed)
    hiveconf: set[str] = set()
    for match in _SET.finditer(code):
        (hivevars if (match.group(1) or "").lower() == "hivevar" else hiveconf).add(match.group(2))
    problems: list[TextProblem] = []
    reported: set[str] = set()
    for match in _HIVE_VAR.finditer(code):
        namespace, name = (match.group(1) or "").lower(), match.group(2)
        if namespace in {"env", "system"}:
            continue
        if namespace == "hiveconf":
            ok = name in hiveconf
            hint = (
                f"args are passed as -d (hivevar): write ${{{name}}} instead"
                if name in passed
                else f"SET {name}=... earlier in the script, or pass it in {label}.args and "
                f"write ${{{name}}}"
            )
        else:
            ok = name in hivevars or (namespace == "" and name in hiveconf)
            hint = f"add {name}: <value> to {label}.args (passed as hive -d {name}=<value>)"
        if ok or match.group(0) in reported:
            continue
        reported.add(match.group(0))
        line, col = position(text, match.start())
        given = ", ".join(sorted(passed)) or "none"
        problems.append(
            TextProblem(
                line,
                col,
                f"{match.group(0)} is never passed to this Hive script, so Hive would leave "
                f"it as literal text (args passed: {given}); {hint}",
            )
        )
    return problems


def _placeholders(text: str) -> str:
    """Comments blanked and `${var}` as a same-length identifier: positions are kept."""
    code = blank_comments(text)
    return _HIVE_VAR.sub(lambda m: "v" + "_" * (len(m.group()) - 1), code)


def _set_lines_blanked(code: str) -> str:
    # `SET name=value` is a CLI command with free-form values; the parser need not read it.
    return re.sub(r"^\s*set\s[^;\n]*;?", lambda m: " " * len(m.group()), code, flags=re.I | re.M)


def hive_parse_problems(text: str) -> list[TextProblem]:
    """The first place no HiveQL grammar sqlglot knows can read, as a located problem."""
    return list(_hive_parse_problems(text))


@functools.lru_cache(maxsize=1024)
def _hive_parse_problems(text: str) -> tuple[TextProblem, ...]:
    code = _set_lines_blanked(_placeholders(text))
    if not code.strip():
        return ()
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # sqlglot warns when it falls back to an opaque command
    try:
        first: SqlglotError | None = None
        for dialect in _HIVE_DIALECTS:
            try:
                sqlglot.parse(code, read=dialect)
                return ()
            except SqlglotError as exc:
                first = first or exc
            except Exception as exc:  # sqlglot raises plain errors on some malformed input
                first = first or SqlglotError(str(exc))
    finally:
        logger.setLevel(level)
    assert first is not None
    line, col, what = 1, 1, str(first).split("\n")[0]
    if isinstance(first, ParseError) and first.errors:
        error = first.errors[0]
        line, col = int(error.get("line") or 1), max(int(error.get("col") or 1), 1)
        what = str(error.get("description") or what)
        highlight = error.get("highlight")
        if highlight:
            what += f" near '{highlight}'"
    return (
        TextProblem(
            line,
            col,
            f"this Hive script does not parse as HiveQL: {what}; fix the statement (the "
            "script runs as hive -f on the cluster)",
        ),
    )
