"""Fuzzing the spec front door: mutated and hostile specs never crash, hang or write a file.

For any input, `validate_paths` returns within a hard time limit and never raises; every
problem names a file it checked, a line and column inside that file and a one-line message;
a spec it accepts renders on both Airflow lines (or is refused with a clean, located error);
and `mwaa-elt validate` / `render` print exactly those problems as `path:line:col: message`,
exit 1, show no traceback and write nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_support import HANG_SECONDS, fuzz_settings, hard_timeout, hostile_text
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.render import render_pipelines
from mwaa_elt.spec import ValidationReport, discover_specs, validate_paths
from mwaa_elt.spec.yaml_source import MAX_SPEC_BYTES, load_yaml
from mwaa_elt.stage import load_all_stages

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("movielens_emr", "movielens_scifi", "scifi_quality")
STAGES = load_all_stages(ROOT / "stacks")
ORIGINAL = {name: (ROOT / "pipelines" / name / f"{name}.yaml").read_bytes() for name in EXAMPLES}
Tree = Any
YamlPath = tuple[str | int, ...]

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Stand-ins replaced in the dumped YAML by text a YAML writer would never produce.
DEEP = "__FUZZ_DEEP_NESTING__"
BOMB = "__FUZZ_ALIAS_BOMB__"
DEEP_TEXT = "[" * 10_000 + "]" * 10_000
BOMB_TEXT = (
    "[&a [x, x, x, x, x, x, x, x, x], "
    + ", ".join(f"&{c} [{', '.join([f'*{chr(ord(c) - 1)}'] * 9)}]" for c in "bcdefghij")
    + "]"
)
PROBLEM_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): (?P<msg>\S.*)$"
)


# -- a scratch project -----------------------------------------------------------------------


@dataclass
class Workspace:
    """A copy of the project (stacks, templates, the example pipelines) that tests may break."""

    root: Path

    @property
    def pipelines(self) -> Path:
        return self.root / "pipelines"

    def spec(self, name: str) -> Path:
        return self.pipelines / name / f"{name}.yaml"

    def write(self, name: str, raw: bytes) -> Path:
        path = self.spec(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        return path

    def restore(self) -> None:
        for name in EXAMPLES:
            self.write(name, ORIGINAL[name])
        for extra in self.pipelines.iterdir():
            if extra.is_dir() and extra.name not in EXAMPLES:
                shutil.rmtree(extra)
        shutil.rmtree(self.root / "build", ignore_errors=True)

    def snapshot(self) -> dict[str, str]:
        """Every file below the root with a digest of its bytes: proves nothing was written."""
        return {
            str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.root.rglob("*"))
            if p.is_file() or p.is_symlink()
        }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("fuzz-project")
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    for folder in ("stacks", "dag_templates"):
        shutil.copytree(ROOT / folder, root / folder)
    shutil.copytree(ROOT / "pipelines", root / "pipelines")
    ws = Workspace(root)
    yield ws
    ws.restore()


# -- mutations ---------------------------------------------------------------------------------


def _original_data(name: str) -> Tree:
    doc, problems = load_yaml(ORIGINAL[name])
    assert doc is not None, problems
    return doc.data


DATA = {name: _original_data(name) for name in EXAMPLES}


def node_paths(tree: Tree, prefix: YamlPath = ()) -> Iterator[YamlPath]:
    """The path of every key and list item under `tree`, parents first."""
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from node_paths(value, (*prefix, key))


def _parent(tree: Tree, path: YamlPath) -> Tree:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def replace(tree: Tree, path: YamlPath, value: Any) -> None:
    _parent(tree, path)[path[-1]] = copy.deepcopy(value)  # shared objects would dump as aliases


def drop(tree: Tree, path: YamlPath) -> None:
    del _parent(tree, path)[path[-1]]


def rename(tree: Tree, path: YamlPath, new: str) -> None:
    parent = _parent(tree, path)
    items = [(new if k == path[-1] else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)


def to_yaml(tree: Tree) -> str:
    return yaml.dump(tree, Dumper=DUMPER, sort_keys=False, allow_unicode=True, width=10**9)


def expand(text: str) -> str:
    """`text` with the stand-ins replaced by deep nesting and an alias bomb."""
    return text.replace(DEEP, DEEP_TEXT).replace(BOMB, BOMB_TEXT)


def dump(tree: Tree) -> str:
    """YAML text for `tree`, stand-ins expanded."""
    return expand(to_yaml(tree))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
)
# Values each a mistake somewhere: YAML look-alikes, bad dates, cron, durations, paths, S3
# locations, stage variables, SQL, names of another kind, very long text.
# fmt: off
WRONG_TEXTS = [
    "", " ", "null", "~", "yes", "0x1F", "1e3", ".inf", "2024-13-45", "2024-02-30", "@daily",
    "@dailly", "* * * * * *", "61 25 * * *", "1h", "0s", "-1m", "99999999999d", "s3://",
    "s3://bucket", "s3:///key", "{{ lake.bucket }}", "{{ lake.uri }}", "{{ lake.uri * 3 }}",
    "{{ db.nope }}", "{{ db }}", "{{ stage.name ~ ds }}", "{{ db.movielens ~ '.t' }}", "{{ ds",
    "{% if %}", "{# open", "dev_movielens", "airflow", "../x.sql", "/etc/passwd", "~/x.sql",
    "C:\\x.sql", "sql/missing.sql", "sql/create_movies.sql", "scripts/clean_ratings.hql",
    "scripts", "SELEC 1", "SELECT 1; SELECT 2", "j-ABC", "emr-7.5.0", "m5.xlarge", "Hive",
    "spark.x", "movielens_scifi.scifi", "x" * 100_000, "y" * (MAX_SPEC_BYTES + 1),
]
EDIT_PIECES = [
    "\u2028", "\x85", "\ufeff", "\t", "'", '"', "{", "}", "[", "]", "&", "*", "!", "%", "@", "`",
    "|", ">", "#", ": ", "- ", "\\", "? ", ",", "!!binary ", "\x7f",
]
SPECIAL_BYTES = [
    b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\xc2\x85", b"\xe2\x80\xa8", b"\r", b"\t",
    b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x1b[2J", b"\n---\n", b"&x ", b"*x", b"!!str ",
]
# fmt: on
wrong_values = st.one_of(
    scalars,
    st.sampled_from([0, -1, 10**30, 1.5, float("nan"), float("inf"), True, None, [], {}]),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=6), scalars, max_size=3),
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
        ),
        max_leaves=6,
    ),
    hostile_text(),
    st.sampled_from(WRONG_TEXTS),
    st.just(DEEP),
    st.just(BOMB),
)
new_keys = st.one_of(
    st.sampled_from(["", " ", "<<", "?", "-", "Tasks", "task", "id ", "sql_files", "on-failure"]),
    st.text(min_size=1, max_size=12),
)


@st.composite
def mutated_spec(draw: st.DrawFn) -> tuple[str, bytes]:
    """An example spec with one to three tree edits, then maybe a few text edits."""
    name = draw(st.sampled_from(EXAMPLES))
    tree = copy.deepcopy(DATA[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(node_paths(tree))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "drop", "rename", "wrap"]))
        if op == "replace":
            replace(tree, path, draw(wrong_values))
        elif op == "drop":
            drop(tree, path)
        elif op == "rename" and isinstance(path[-1], str):
            rename(tree, path, draw(new_keys))
        else:
            value = _parent(tree, path)[path[-1]]
            replace(tree, path, draw(st.sampled_from([[value], {"x": value}, {path[-1]: value}])))
    text = dump(tree)
    for _ in range(draw(st.integers(0, 2))):
        text = draw(text_edit(text))
    return name, text.encode("utf-8", "surrogatepass")


@st.composite
def text_edit(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    at = draw(st.integers(0, max(0, len(lines) - 1)))
    kind = draw(
        st.sampled_from(
            ["dup", "del", "tab", "doc", "anchor", "crlf", "cr", "insert", "truncate", "indent"]
        )
    )
    if kind == "dup":
        lines.insert(at, lines[at])
    elif kind == "del":
        del lines[at]
    elif kind == "tab":
        lines[at] = "\t" + lines[at]
    elif kind == "indent":
        lines[at] = " " * draw(st.integers(1, 5)) + lines[at]
    elif kind == "doc":
        lines.insert(
            at, draw(st.sampled_from(["---", "...", "--- !!map", "%YAML 1.1", "---\nx: 1"]))
        )
    elif kind == "anchor":
        lines[at] = lines[at].replace(": ", ": &a ", 1)
        lines.append("zz: *a")
    elif kind == "crlf":
        return "\r\n".join(lines)
    elif kind == "cr":
        return "\r".join(lines)
    elif kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    else:
        piece = draw(st.sampled_from(EDIT_PIECES))
        line = lines[at]
        col = draw(st.integers(0, len(line)))
        lines[at] = line[:col] + piece + line[col:]
    return "\n".join(lines)


@st.composite
def mutated_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """An example spec's bytes with one to four byte-level edits."""
    name = draw(st.sampled_from(EXAMPLES))
    raw = bytearray(ORIGINAL[name])
    special = st.sampled_from(SPECIAL_BYTES)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(["insert", "special", "flip", "delete"]))
        if kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "special":
            raw[at:at] = draw(special)
        elif kind == "flip" and at < len(raw):
            raw[at] ^= 1 << draw(st.integers(0, 7))
        else:
            del raw[at : at + draw(st.integers(1, 40))]
    return name, bytes(raw)


# -- the properties ----------------------------------------------------------------------------


def assert_well_formed(report: ValidationReport, checked: list[Path]) -> None:
    """Each problem is in a file that was checked or that a spec references, on a line that
    exists, with a one-line message."""
    folders = {p.parent.resolve() for p in checked}
    lines_of: dict[Path, list[bytes]] = {}
    for problem in report.problems:
        where = f"{problem.path}:{problem.line}:{problem.col}: {problem.message!r}"
        if problem.path not in lines_of:
            resolved = problem.path.resolve()
            assert (
                problem.path in checked
                or resolved.parent in folders
                or any(folder in resolved.parents for folder in folders)
            ), where
            raw = problem.path.read_bytes() if problem.path.is_file() else b""
            lines_of[problem.path] = raw.split(b"\n")
        lines = lines_of[problem.path]
        assert 1 <= problem.line <= len(lines), f"{where}: the file has {len(lines)} lines"
        line = lines[problem.line - 1].decode("utf-8", "replace")
        line = line.removeprefix("\ufeff") if problem.line == 1 else line  # editors hide a BOM
        assert 1 <= problem.col <= len(line) + 1, f"{where}: the line is {len(line)} long"
        assert problem.message.strip(), where
        assert problem.message.splitlines() == [problem.message], f"{where}: not one line"
        assert problem.message.isprintable(), f"{where}: unprintable characters"
        assert "Traceback" not in problem.message, where


def validate(paths: list[Path]) -> ValidationReport:
    with hard_timeout(f"validating {[p.name for p in paths]}"):
        return validate_paths(paths, STAGES)


def assert_renders_or_refuses_cleanly(
    report: ValidationReport, name: str, ws: Workspace, stage: str
) -> None:
    """A spec the validator accepted renders for `stage`: every refusal render had is now
    validation's, so rendering a valid spec never fails."""
    pipeline = report.pipelines[name]
    try:
        with hard_timeout(f"rendering {name} for {stage}"):
            result = render_pipelines(
                {name: pipeline}, STAGES[stage], ws.root / "dag_templates", project_root=ws.root
            )
    except ConfigError as error:
        raise AssertionError(f"validate accepted what render refuses: {error.messages}") from None
    assert f"dags/{name}.py" in result.files


def check_mutation(
    ws: Workspace, name: str, raw: bytes, stage: str, checked: list[Path] | None = None
) -> ValidationReport:
    """Validate `checked` (default: the examples) with `name` replaced by `raw`; render it for
    `stage` if valid."""
    try:
        path = ws.write(name, raw)
        checked = checked or [ws.spec(n) for n in EXAMPLES]
        report = validate(checked)
        assert_well_formed(report, checked)
        own = next(f for f in report.files if f.path == path)
        if own.ok:
            assert_renders_or_refuses_cleanly(report, name, ws, stage)
        return report
    finally:
        ws.restore()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stub") / "movielens_scifi" / "movielens_scifi.yaml"
    path.parent.mkdir()
    path.write_text(STUB)
    return path


# dev runs Airflow 3, staging Airflow 2: a valid mutation is rendered on one of them.
airflow_stage = st.sampled_from(["dev", "staging"])


@fuzz_settings(max_examples=80)
@given(case=mutated_spec(), stage=airflow_stage)
def test_mutated_specs_give_located_problems_or_render(
    workspace: Workspace, case: tuple[str, bytes], stage: str
) -> None:
    check_mutation(workspace, *case, stage)


@fuzz_settings(max_examples=50)
@given(case=mutated_bytes(), stage=airflow_stage)
def test_byte_mutations_of_specs_give_located_problems(
    workspace: Workspace, stub: Path, case: tuple[str, bytes], stage: str
) -> None:
    name, raw = case
    alone = [workspace.spec(name), *([stub] if name == "scifi_quality" else [])]
    check_mutation(workspace, name, raw, stage, alone)


# -- large specs: thousands of the same mistake --------------------------------------------------

HEAD = "pipeline: big\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\ntasks:\n"
LARGE = {
    # 4,000 tasks naming missing ones: each was compared with every task id (111 s)
    "missing dependencies": lambda n: "".join(
        f"- {{id: t{i}, athena: {{sql: SELECT 1}}, depends_on: [x{i}]}}\n" for i in range(n)
    ),
    "duplicate task ids": lambda n: "- {id: t, athena: {sql: SELECT 1}}\n" * n,
    "one long cycle": lambda n: "".join(
        f"- {{id: t{i}, athena: {{sql: SELECT 1}}, depends_on: [t{(i + 1) % n}]}}\n"
        for i in range(n)
    ),
    "unknown keys": lambda n: (
        "- {id: a, athena: {sql: SELECT 1}}\n" + "".join(f"k{i}: 1\n" for i in range(n))
    ),
}


@pytest.mark.parametrize("kind", list(LARGE))
def test_large_specs_of_one_mistake_finish_with_located_problems(tmp_path: Path, kind: str) -> None:
    """Specs near the size limit repeating one mistake thousands of times: validation finishes
    (within the hang limit) and every problem is well formed."""
    path = tmp_path / "big" / "big.yaml"
    path.parent.mkdir()
    path.write_text(HEAD + LARGE[kind](4_000))
    assert path.stat().st_size <= MAX_SPEC_BYTES
    report = validate([path])
    assert report.problems
    assert_well_formed(report, [path])


# -- every field, every wrong type -------------------------------------------------------------

WRONG_KINDS: dict[str, Any] = {
    "int": 7,
    "float": 2.5,
    "bool": True,
    "null": None,
    "list": [["nested"]],
    "map": {"Not A Key!": [1]},
    "long string": "z" * 3_000,
    "hostile string": '\'"""\\\n{{ ds }}{% raw %}\u2603\x1b',
    "bucket without key": "s3://bucket",
    "stage variable": "{{ lake.bucket }}/x",
    "deep nesting": DEEP,
    "alias bomb": BOMB,
}
# Text kinds a field may accept although rendering cannot use them: accepted ones are rendered.
RENDERED_KINDS = {"hostile string", "long string", "bucket without key", "stage variable"}
# Kinds no field of a spec accepts: each must be refused where it was written.
NEVER_VALID = {"list", "map", "deep nesting", "alias bomb"}
# The loader refuses these for the whole file at the first one, so they go one key at a time.
WHOLE_FILE = {"deep nesting", "alias bomb"}
# scifi_quality waits for movielens_scifi.scifi: this stand-in lets it validate alone, cheaply.
STUB = (
    "pipeline: movielens_scifi\ndescription: d\nowner: analytics\nstart_date: 2024-01-01\n"
    "produces: [scifi]\ntasks:\n  - id: a\n    athena: {sql: SELECT 1}\n"
)


def field_groups(tree: Tree) -> list[list[YamlPath]]:
    """Paths that can be replaced together without one containing another: all scalars, then
    the containers of each depth."""
    paths = list(node_paths(tree))
    leaves = [p for p in paths if not isinstance(_at(tree, p), dict | list)]
    containers = [p for p in paths if isinstance(_at(tree, p), dict | list)]
    depths = sorted({len(p) for p in containers})
    return [leaves, *([p for p in containers if len(p) == d] for d in depths)]


def _at(tree: Tree, path: YamlPath) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def line_spans(text: str, paths: list[YamlPath]) -> dict[YamlPath, tuple[int, int]]:
    """The lines of each key in `paths` and its value in YAML `text` (stand-ins not expanded:
    they expand within their line): from the key's line to the line before the next key that
    is not inside it."""
    doc, problems = load_yaml(text.encode())
    assert doc is not None, problems
    marks = sorted({(m.line, p) for p, m in doc.key_marks.items()}, key=lambda x: x[0])
    last_line = doc.text.count("\n") + 1
    spans = {}
    for path in paths:
        inside = [line for line, p in marks if p[: len(path)] == path]
        first, deepest = min(inside), max(inside)
        after = [line for line, p in marks if line > deepest and p[: len(path)] != path]
        spans[path] = (first, (min(after) - 1) if after else last_line)
    return spans


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("kind", list(WRONG_KINDS))
def test_every_field_given_every_wrong_type_is_refused_where_it_is(
    workspace: Workspace, stub: Path, name: str, kind: str
) -> None:
    """Every key of an example gets a value of `kind`, a group of non-overlapping keys at a
    time: each such key has a problem within its own lines, or the field accepts that value
    (then changing that key alone leaves no problem there either, and the spec renders);
    never-valid kinds are always refused. One validation reports a group's problems at once."""
    target = workspace.spec(name)
    companions = [stub] if name == "scifi_quality" else []
    failures = []
    accepted: list[YamlPath] = []
    try:
        groups = field_groups(DATA[name])
        if kind in WHOLE_FILE:
            groups = [[path] for group in groups for path in group]
        for group in groups:
            tree = copy.deepcopy(DATA[name])
            for path in group:
                replace(tree, path, WRONG_KINDS[kind])
            text = to_yaml(tree)
            spans = line_spans(text, group)
            workspace.write(name, expand(text).encode())
            report = validate([target, *companions])
            assert_well_formed(report, [target, *companions])
            lines = {p.line for p in report.problems if p.path == target}
            for path in group:
                first, last = spans[path]
                if any(first <= line <= last for line in lines):
                    continue
                if kind in NEVER_VALID:
                    failures.append((path, "accepted", (first, last), sorted(lines)))
                    continue
                alone = copy.deepcopy(DATA[name])
                replace(alone, path, WRONG_KINDS[kind])
                text = to_yaml(alone)
                first, last = line_spans(text, [path])[path]
                workspace.write(name, expand(text).encode())
                single = validate([target, *companions])
                found = [
                    str(p) for p in single.problems if p.path == target and first <= p.line <= last
                ]
                if found:
                    failures.append((path, "reported only alone", found))
                elif single.pipelines.get(name) is not None:
                    accepted.append(path)
        if accepted and kind in RENDERED_KINDS:  # what validate accepts must render, all at once
            tree = copy.deepcopy(DATA[name])
            for path in accepted:
                replace(tree, path, WRONG_KINDS[kind])
            workspace.write(name, dump(tree).encode())
            report = validate([target, *companions])
            if report.pipelines.get(name) is not None:
                for stage in ("dev", "staging"):
                    assert_renders_or_refuses_cleanly(report, name, workspace, stage)
    finally:
        workspace.restore()
    assert failures == []


# -- through the command line --------------------------------------------------------------------

runner = CliRunner()


def shown(path: Path, cwd: Path) -> str:
    """A path as the CLI prints it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


def expected_lines(report: ValidationReport, targets: set[Path], cwd: Path) -> list[str]:
    return [
        f"{shown(p.path, cwd)}:{p.line}:{p.col}: {p.message}"
        for f in report.files
        if f.path.resolve() in targets
        for p in f.problems
    ]


def assert_problem_lines(lines: list[str]) -> None:
    for line in lines:
        assert PROBLEM_LINE.match(line), f"not path:line:col: message: {line!r}"


@fuzz_settings(max_examples=8)
@given(case=st.one_of(mutated_spec(), mutated_bytes()))
def test_cli_validate_prints_exactly_the_located_problems_and_writes_nothing(
    workspace: Workspace, case: tuple[str, bytes]
) -> None:
    name, raw = case
    cwd = Path.cwd()
    try:
        target = workspace.write(name, raw)
        before = workspace.snapshot()
        report = validate(discover_specs(workspace.pipelines))
        expected = expected_lines(report, {target.resolve()}, cwd)
        with hard_timeout("mwaa-elt validate"):
            text = runner.invoke(app, ["validate", "-C", str(workspace.root), str(target)])
            as_json = runner.invoke(
                app, ["validate", "-C", str(workspace.root), str(target), "--format", "json"]
            )
        assert text.exit_code == (1 if expected else 0), text.output
        assert text.stdout.splitlines() == expected
        assert_problem_lines(text.stdout.splitlines())
        assert "Traceback" not in text.output
        data = json.loads(as_json.stdout)
        assert data["ok"] is (not expected)
        assert [
            f"{shown(Path(f['path']), cwd)}:{p['line']}:{p['col']}: {p['message']}"
            for f in data["files"]
            for p in f["problems"]
        ] == expected
        if not report.ok:
            with hard_timeout("mwaa-elt render"):
                rendered = runner.invoke(
                    app, ["render", "--stage", "dev", "-C", str(workspace.root)]
                )
            assert rendered.exit_code == 1
            assert isinstance(rendered.exception, ConfigError), rendered.exception
            everything = {f.path.resolve() for f in report.files}
            assert rendered.exception.messages[:-1] == expected_lines(report, everything, cwd)
            assert rendered.exception.messages[-1].startswith("nothing was rendered")
        assert workspace.snapshot() == before
    finally:
        workspace.restore()


def _every_leaf(tree: Tree, value: Any) -> Tree:
    """`tree` with every scalar replaced by `value`."""
    if isinstance(tree, dict):
        return {k: _every_leaf(v, value) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_every_leaf(v, value) for v in tree]
    return copy.deepcopy(value)


def hostile_corpus() -> dict[str, bytes]:
    """Specs that attack the loader, the validator and the terminal, by pipeline name."""
    emr = ORIGINAL["movielens_emr"].decode()
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((c, c) + (c - 1,) * 9)
        for c in range(ord("b"), ord("k"))
    )
    hostile_values = {
        **DATA["movielens_emr"],
        "pipeline": "fz_terminal",
        "owner": "\x1b[2J\x1b[31mred",
        "retry_delay": "1\nfake.yaml:1:1: injected line :smile: [bold]x[/bold]",
        "schedule": "\u2028@daily\x85",
        "tags": ["\t", "a" * 101],
    }
    return {
        "fz_empty": b"",
        "fz_garbage": bytes(range(256)) * 4,
        "fz_not_utf8": ORIGINAL["movielens_emr"].replace(b"Hive", b"Hive\xff\xfe", 1),
        "fz_nul": b"pipeline: fz_nul\x00\n",
        "fz_bom_only": b"\xef\xbb\xbf",
        "fz_deep_list": b"pipeline: fz_deep_list\ntasks: " + b"[" * 10_000 + b"]" * 10_000,
        "fz_deep_map": b"pipeline: fz_deep_map\ncluster: " + b"{a: " * 5_000 + b"}" * 5_000,
        "fz_deep_block": b"".join(b"  " * i + b"k%d:\n" % i for i in range(2_000)),
        "fz_alias_bomb": bomb,
        "fz_oversized": b"pipeline: fz_oversized\ndescription: " + b"x" * MAX_SPEC_BYTES,
        "fz_two_documents": b"pipeline: fz_two_documents\n---\npipeline: again\n",
        "fz_python_tag": b"pipeline: !!python/object/apply:os.system ['touch pwned']\n",
        "fz_tab": emr.replace("  dev:", "\tdev:").encode(),
        "fz_cr_only": emr.replace("fz", "x").replace("\n", "\r").encode(),
        "fz_a_list": b"- pipeline: fz_a_list\n",
        "fz_wrong_containers": dump(_every_leaf(DATA["movielens_emr"], [["x"]])).encode(),
        "fz_wrong_scalars": dump(_every_leaf(DATA["movielens_scifi"], 3.5)).encode(),
        "fz_terminal": to_yaml(hostile_values).encode(),
        "fz_jinja_nesting": b"pipeline: fz_jinja_nesting\ndescription: d\nowner: analytics\n"
        b"start_date: 2024-01-01\ntasks:\n  - id: a\n    athena: {sql: \"SELECT '{{ "
        + b"(" * 5_000
        + b"'\"}\n",
    }


def run_cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "MWAA_ELT_PROJECT")}
    env.update(NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    command = [str(Path(sys.executable).with_name("mwaa-elt")), *args]
    return subprocess.run(
        command,
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        check=False,
    )


def assert_cli_refuses(ws: Workspace, targets: list[Path]) -> None:
    """`mwaa-elt validate` and `render` in a real process: exit 1, exactly the library's problems
    one per line, no traceback, nothing written."""
    before = ws.snapshot()
    report = validate(discover_specs(ws.pipelines))
    wanted = {t.resolve() for t in targets}
    expected = expected_lines(report, wanted, ws.root)
    assert expected, "the corpus must be invalid"
    checked = run_cli(ws, "validate", *(str(t.relative_to(ws.root)) for t in targets))
    assert checked.returncode == 1, checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == expected
    assert_problem_lines(checked.stdout.splitlines())
    assert re.fullmatch(
        r"\d+ problem\(s\) in \d+ of \d+ spec\(s\) checked against 3 stage\(s\)\n", checked.stderr
    ), checked.stderr
    rendered = run_cli(ws, "render", "--stage", "dev")
    assert rendered.returncode == 1, rendered.stdout
    assert "Traceback" not in rendered.stdout + rendered.stderr
    everything = expected_lines(report, {f.path.resolve() for f in report.files}, ws.root)
    assert rendered.stderr.splitlines() == [
        *(f"error: {line}" for line in everything),
        "error: nothing was rendered: fix the problems above (mwaa-elt validate)",
    ]
    assert ws.snapshot() == before


def mutated_examples() -> dict[str, bytes]:
    """One mutation of each example, drawn by Hypothesis (deterministically), by name."""
    drawn: dict[str, bytes] = {}

    @fuzz_settings(max_examples=20)
    @given(case=st.one_of(mutated_spec(), mutated_bytes()))
    def draw(case: tuple[str, bytes]) -> None:
        name, raw = case
        if raw != ORIGINAL[name]:
            drawn.setdefault(name, raw)

    draw()
    return drawn


def test_cli_refuses_hostile_and_mutated_specs_in_a_real_process(workspace: Workspace) -> None:
    """The hostile corpus plus a mutation of each example, validated and rendered by the
    installed `mwaa-elt` in one process each: the whole path a user's shell sees."""
    try:
        specs = {**hostile_corpus(), **mutated_examples()}
        targets = [workspace.write(name, raw) for name, raw in specs.items()]
        assert_cli_refuses(workspace, targets)
    finally:
        workspace.restore()
