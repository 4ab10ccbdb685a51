"""Finding and reading test files: located problems, exactly as specs report them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mwaa_elt.spec.problems import Problem
from mwaa_elt.spec.pydantic_errors import located_messages
from mwaa_elt.spec.yaml_source import Mark, YamlDocument, load_yaml
from mwaa_elt.sqltest.model import SqlTest, SqlTestFile

TESTS_DIR = "tests"
YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedTest:
    """One valid test with the file it came from, to locate whatever is found later."""

    pipeline: str
    path: Path
    index: int
    test: SqlTest
    doc: YamlDocument

    def mark(self, *key: str | int, value: bool = False) -> Mark:
        """Where `tests[index].<key...>` is written (its value with `value`)."""
        path: YamlPath = ("tests", self.index, *key)
        if value and path in self.doc.value_marks:
            return self.doc.value_marks[path]
        return self.doc.mark(path)

    def problem(self, message: str, *key: str | int, value: bool = False) -> Problem:
        mark = self.mark(*key, value=value)
        return Problem(self.path, mark.line, mark.col, message)


def discover_tests(pipelines_dir: Path, names: list[str] | None = None) -> dict[str, list[Path]]:
    """Test files per pipeline: `<pipelines_dir>/<name>/tests/*.yaml` (and .yml), sorted."""
    found: dict[str, list[Path]] = {}
    folders = (
        sorted(p for p in pipelines_dir.iterdir() if p.is_dir()) if pipelines_dir.is_dir() else []
    )
    for folder in folders:
        if names is not None and folder.name not in names:
            continue
        tests = folder / TESTS_DIR
        files = sorted([*tests.glob("*.yaml"), *tests.glob("*.yml")]) if tests.is_dir() else []
        found[folder.name] = files
    return found


def load_test_file(path: Path, pipeline: str) -> tuple[list[LoadedTest], list[Problem]]:
    """The tests of one file, or every located problem of it (and no tests)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Problem(path, 1, 1, f"cannot read the test file: {exc.strerror}")]
    doc, yaml_problems = load_yaml(raw)
    if doc is None:
        return [], [Problem(path, p.mark.line, p.mark.col, p.message) for p in yaml_problems]
    data: Any = doc.data
    if not isinstance(data, dict):
        return [], [
            Problem(
                path,
                1,
                1,
                "expected a mapping with a 'tests:' list; see pipelines/*/tests/ for examples",
            )
        ]
    try:
        parsed = SqlTestFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(path, mark.line, mark.col, message)
            for mark, message in located_messages(exc, SqlTestFile, doc)
        ]
        return [], sorted(set(problems))
    problems = []
    seen: dict[str, int] = {}
    for index, test in enumerate(parsed.tests):
        if test.name in seen:
            mark = doc.mark(("tests", index, "name"))
            first = doc.mark(("tests", seen[test.name], "name"))
            problems.append(
                Problem(
                    path,
                    mark.line,
                    mark.col,
                    f"tests[{index}].name: '{test.name}' is already the name of the test at "
                    f"line {first.line}; give each test its own name",
                )
            )
        seen.setdefault(test.name, index)
    if problems:
        return [], problems
    return [LoadedTest(pipeline, path, i, t, doc) for i, t in enumerate(parsed.tests)], []
