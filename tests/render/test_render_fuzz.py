"""Hostile spec text renders into DAGs that Airflow loads and that carry the text unchanged.

Quotes, triple quotes, backslashes, line breaks, `{{ }}` / `{% %}` / `{#`, right-to-left and
combining characters, emoji, text outside the BMP, terminal escapes and very long strings go
into every free-text field a spec has: description, tags (also per stage), e-mail addresses,
inline SQL, SQL files, check conditions, partition expressions, S3 keys and prefixes, the
unload folder and delimiter, Hive and Spark arguments, Spark settings, Trino SQL and a Spark
script. Each pipeline is validated and rendered for dev (Airflow 3) and staging (Airflow 2).

"Unchanged" is the value the DAG object holds before Airflow's run-time templating: `{{ ds }}`
stays `{{ ds }}`, as the README promises. The generated source is checked through Python's own
parser for many examples; a batch of examples is loaded by Airflow's DagBag once per line.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_lines import python_of_line
from fuzz_support import HANG_SECONDS, PIECES, fuzz_settings, hard_timeout, hostile_text
from hypothesis import Phase, given
from hypothesis import strategies as st
from render_support import ROOT, TEMPLATES, with_airflow

from mwaa_elt.check import PROBE
from mwaa_elt.render import RenderResult, render_pipelines, write_render
from mwaa_elt.render.view import sql_string
from mwaa_elt.spec import Pipeline, validate_paths
from mwaa_elt.spec.stage_vars import hard_coded_problems, jinja_syntax_problems, stage_var_problems
from mwaa_elt.spec.templates import computed_name_problems, template_problems
from mwaa_elt.stage import Stage, load_all_stages

STAGES = load_all_stages(ROOT / "stacks")


def _stage_on(major: int) -> Stage:
    """The first stage whose stack file runs Airflow `major` (dev: 3, staging: 2), else dev
    forced onto that line; with an SMTP connection, so that specs' e-mail addresses (hostile
    text too) reach the generated source."""
    found = [stage for stage in STAGES.values() if stage.airflow.major == major]
    stage = found[0] if found else with_airflow(STAGES["dev"], major)
    config = stage.config.model_copy(update={"smtp_connection": "smtp_default"})
    return dataclasses.replace(stage, config=config)


LINES = {major: _stage_on(major) for major in (3, 2)}
FUZZ_PROBE = Path(__file__).with_name("fuzz_probe.py")
_FILE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # refused in SQL and script files


# -- hostile text for each kind of field -------------------------------------------------------


def _runtime_template(text: str) -> bool:
    """Text Airflow can render and mwaa-elt leaves alone: valid Jinja, no stage variable, no
    stage's literal names (those are validation errors, tested elsewhere)."""
    return (
        not jinja_syntax_problems(text)
        and not stage_var_problems(text, STAGES)
        and not hard_coded_problems(text, STAGES)
        and not template_problems(text, {2: ["staging"], 3: ["dev"]})
        and not computed_name_problems(text, STAGES)
    )


def _one_line(text: str) -> str:
    return "".join(" " if (c + "x").splitlines() != [c + "x"] or c == "\r" else c for c in text)


def _in_file(text: str) -> str:
    return _FILE_CONTROL.sub("?", text)


def _email(text: str) -> str:
    """An address with `text` (less what an address cannot hold) as its local part."""
    local = "".join(c for c in text if not c.isspace() and c != "@")
    local = re.sub(r"\{(?=[{%#])", "(", local)  # Airflow 3 renders addresses as templates
    return f"{local or 'x'}@example.com"


free = hostile_text()
template = hostile_text().filter(_runtime_template)


def _sql(select: str, comment: str) -> str:
    return f"SELECT {sql_string(select)} AS v -- {_one_line(comment)}\n"


def _check_sql(select: str, comment: str) -> str:
    return f"SELECT {sql_string(select)} <> '' -- {_one_line(comment)}\n"


def _sql_texts(build: Callable[[str, str], str]) -> st.SearchStrategy[str]:
    return st.tuples(hostile_text(), hostile_text()).map(lambda t: build(*t))


sql_texts = _sql_texts(_sql).filter(_runtime_template)


@dataclass(frozen=True)
class Texts:
    """The free text of one generated pipeline, field by field."""

    description: str
    tags: tuple[str, ...]
    dev_tags: tuple[str, ...]
    emails: tuple[str, ...]
    sql: str
    sql_file: str
    check_sql: str
    where: str
    expression: str
    key: str
    prefix: str
    folder: str
    delimiter: str
    unload_select: str
    hive_args: tuple[str, str]
    spark_args: tuple[str, ...]
    spark_conf: str
    trino_sql: str
    script: str


def _field(wrap: Callable[[str], str]) -> st.SearchStrategy[str]:
    return hostile_text().map(wrap).filter(_runtime_template)


tags = st.lists(hostile_text(min_size=1).map(lambda s: s[:100]), min_size=1, max_size=4)
texts = st.builds(
    Texts,
    description=hostile_text(min_size=1),
    tags=tags.map(tuple),
    dev_tags=tags.map(tuple),
    emails=st.lists(free.map(_email), min_size=1, max_size=3).map(tuple),
    sql=sql_texts,
    sql_file=sql_texts.map(_in_file).filter(_runtime_template),
    check_sql=_sql_texts(_check_sql).filter(_runtime_template),
    where=_field(lambda s: f"v = {sql_string(s)}"),
    expression=_field(lambda s: f"ds = {sql_string(s)}"),
    key=_field(lambda s: f"s3://fuzz-bucket/k{s}"),
    prefix=_field(lambda s: f"s3://fuzz-bucket/p{s}/"),
    folder=_field(lambda s: _one_line(f"f{s}")),
    delimiter=st.sampled_from([",", "'", '"', "\\", "\t", "|", "☃", "\x01", "😀", "{", "%"]),
    unload_select=_field(lambda s: f"SELECT {sql_string(s)} AS v"),
    hive_args=st.tuples(template, template),
    spark_args=st.lists(template, max_size=4).map(tuple),
    spark_conf=template,
    trino_sql=sql_texts,
    script=_field(lambda s: _in_file(f"# {_one_line(s)}\nprint({s!r})\n")),
)


def spec_of(name: str, t: Texts) -> dict[str, Any]:
    """The spec of pipeline `name`, every free-text field filled from `t`."""
    return {
        "pipeline": name,
        "description": t.description,
        "owner": "analytics",
        "tags": list(t.tags),
        "start_date": "2024-01-01",
        "on_failure": {"email": list(t.emails)},
        "cluster": {"applications": ["Hadoop", "Hive", "Spark", "Trino"]},
        "stages": {"dev": {"tags": list(t.dev_tags)}},
        "sources": [{"table": "analytics.t"}, {"table": "movielens.r"}],
        "tasks": [
            {"id": "sql_inline", "athena": {"sql": t.sql}},
            {"id": "sql_from_file", "athena": {"sql_file": "sql/query.sql"}},
            {"id": "check_sql", "check": {"sql": t.check_sql}},
            {
                "id": "check_where",
                "check": {"table": "{{ db.analytics }}.t", "row_count_min": 1, "where": t.where},
            },
            {
                "id": "partition",
                "wait_for_partition": {"table": "{{ db.movielens }}.r", "expression": t.expression},
            },
            {"id": "s3_key", "wait_for_s3": {"key": t.key}},
            {"id": "s3_prefix", "wait_for_s3": {"prefix": t.prefix}},
            {
                "id": "export",
                "unload": {
                    "sql": t.unload_select,
                    "to": "{{ lake.uri }}" + t.folder + "/",
                    "delimiter": t.delimiter,
                },
            },
            {
                "id": "hive_step",
                "hive": {
                    "script": "scripts/job.hql",
                    "args": {"a": t.hive_args[0], "b": t.hive_args[1]},
                },
            },
            {
                "id": "spark_step",
                "spark": {
                    "script": "scripts/job.py",
                    "args": list(t.spark_args),
                    "conf": {"spark.fuzz.value": t.spark_conf},
                },
            },
            {"id": "trino_step", "trino": {"sql": t.trino_sql}},
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Writes every string double-quoted: its escapes carry any character through YAML."""


_Dumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"')
)


def write_pipelines(root: Path, batch: list[Texts]) -> dict[str, Texts]:
    """Write `batch` as pipelines fz0, fz1, ... under `root`; their texts by name."""
    named = {f"fz{i}": t for i, t in enumerate(batch)}
    for name, t in named.items():
        folder = root / name
        (folder / "sql").mkdir(parents=True, exist_ok=True)
        (folder / "scripts").mkdir(exist_ok=True)
        (folder / "sql" / "query.sql").write_bytes(t.sql_file.encode())
        (folder / "scripts" / "job.hql").write_bytes(b"SELECT 1;\n")
        (folder / "scripts" / "job.py").write_bytes(t.script.encode())
        text = yaml.dump(spec_of(name, t), Dumper=_Dumper, allow_unicode=True, width=10**9)
        (folder / f"{name}.yaml").write_bytes(text.encode())
    return named


def validated(root: Path, named: dict[str, Texts]) -> dict[str, Pipeline]:
    paths = [root / name / f"{name}.yaml" for name in named]
    with hard_timeout("validating hostile specs"):
        report = validate_paths(paths, STAGES)
    assert report.ok, [str(p) for p in report.problems]
    for name, t in named.items():  # the YAML round trip itself must be exact
        pipeline = report.pipelines[name]
        assert (pipeline.description, tuple(pipeline.tags)) == (t.description, t.tags)
    return report.pipelines


def render(pipelines: dict[str, Pipeline], stage: Stage, root: Path) -> RenderResult:
    with hard_timeout(f"rendering for {stage.name}"):
        return render_pipelines(pipelines, stage, TEMPLATES, project_root=root)


# -- what a DAG carries, and what it should ----------------------------------------------------


@dataclass
class Carried:
    """What one DAG holds: its documentation, tags, alert addresses and each task's fields."""

    description: str
    doc_md: str
    tags: list[str]
    emails: list[str]
    tasks: dict[str, dict[str, Any]]


def from_source(source: str) -> Carried:
    """What the generated file passes to DAG and to each operator, read with Python's parser."""
    calls: dict[str, dict[str, Any]] = {}
    emails: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "email":
                    emails = ast.literal_eval(value)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        values = {}
        for keyword in node.keywords:
            try:
                values[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                continue
        if node.func.id == "SmtpNotifier":
            emails = values["to"]
        name = "DAG" if node.func.id == "DAG" else values.get("task_id")
        if isinstance(name, str):
            calls[name] = values
    dag = calls.pop("DAG")
    return Carried(dag["description"], dag["doc_md"], sorted(dag["tags"]), emails, calls)


def from_probe(dag: dict[str, Any], major: int) -> Carried:
    """What Airflow's DAG object holds, from fuzz_probe.py's JSON."""
    tasks = {task_id: task["fields"] for task_id, task in dag["tasks"].items()}
    first = next(iter(dag["tasks"].values()))
    emails = first["email"] if major == 2 else next(to for to in first["notify_to"] if to)
    return Carried(dag["description"], dag["doc_md"], dag["tags"], emails, tasks)


def mismatches(got: Carried, t: Texts, stage: Stage) -> list[str]:
    """Every field of `got` that does not carry the text of `t` exactly; empty when all do."""
    found: list[str] = []

    def same(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            found.append(f"{what}: {actual!r} != {expected!r}")

    tags = t.dev_tags if stage.name == "dev" else t.tags
    same("description", got.description, t.description)
    same("doc_md", got.doc_md[: len(t.description) + 2], t.description + "\n\n")
    same("tags", got.tags, sorted({*tags, stage.name}))
    same("emails", got.emails, list(t.emails))
    tasks = got.tasks
    same("athena sql", tasks["sql_inline"]["query"], t.sql)
    same("athena sql_file", tasks["sql_from_file"]["query"], t.sql_file)
    same("check sql", tasks["check_sql"]["op_kwargs"]["sql"], t.check_sql)
    where = tasks["check_where"]["op_kwargs"]["sql"]
    same("check where", where[where.index("\nWHERE ") + 7 :], t.where + "\n")
    same("partition expression", tasks["partition"]["expression"], t.expression)
    same("s3 key", tasks["s3_key"]["bucket_key"], t.key)
    same("s3 prefix", tasks["s3_prefix"]["bucket_key"], t.prefix + "*")
    own = stage.data_lake_write_prefixes[0]
    same("unload clears", tasks["export_clear"]["prefix"], f"{own}{t.folder}/")
    target = f"s3://{stage.data_lake_bucket}/{own}{t.folder}/"
    same(
        "unload query",
        tasks["export"]["query"],
        f"UNLOAD (\n{t.unload_select}\n)\nTO {sql_string(target)}\nWITH (format = 'TEXTFILE', "
        f"field_delimiter = {sql_string(t.delimiter)}, compression = 'NONE')\n",
    )
    args = tasks["hive_step_submit"]["steps"][0]["HadoopJarStep"]["Args"]
    same("hive args", args[5:], ["-d", f"a={t.hive_args[0]}", "-d", f"b={t.hive_args[1]}"])
    args = tasks["spark_step_submit"]["steps"][0]["HadoopJarStep"]["Args"]
    same("spark conf", args[3:5], ["--conf", f"spark.fuzz.value={t.spark_conf}"])
    same("spark args", args[6:], list(t.spark_args))
    args = tasks["trino_step_submit"]["steps"][0]["HadoopJarStep"]["Args"]
    same("trino sql", args, ["trino-cli", "--catalog", "hive", "--execute", t.trino_sql])
    return found


def assert_source_carries(result: RenderResult, named: dict[str, Texts], stage: Stage) -> None:
    for name, t in named.items():
        source = result.files[f"dags/{name}.py"].decode()
        assert mismatches(from_source(source), t, stage) == [], f"{name} for {stage.name}"
        (script,) = [p for p in result.files if re.match(rf"scripts/{name}/\w+/job\.py$", p)]
        assert result.files[script] == t.script.encode(), "the Spark script changed"


# -- the properties ----------------------------------------------------------------------------


# No shrinking: an example costs two renders, and the failure names the field and both texts.
@fuzz_settings(max_examples=10, phases=[Phase.explicit, Phase.generate])
@given(batch=st.lists(texts, min_size=1, max_size=3))
def test_hostile_text_in_every_field_is_carried_by_the_generated_source(batch: list[Texts]) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-render-") as tmp:
        root = Path(tmp)
        named = write_pipelines(root, batch)
        pipelines = validated(root, named)
        for stage in LINES.values():
            assert_source_carries(render(pipelines, stage, root), named, stage)


def collect(count: int) -> list[Texts]:
    """`count` varied examples drawn by Hypothesis (deterministically), for one costly check."""
    drawn: list[Texts] = []

    @fuzz_settings(max_examples=count)
    @given(t=texts)
    def draw(t: Texts) -> None:
        drawn.append(t)

    draw()
    return drawn


def corpus() -> list[Texts]:
    """One hand-written example with every hostile piece in every field."""
    every = "".join(PIECES)
    safe = ""
    for piece in PIECES:  # as many pieces as stay a valid run-time template together
        if _runtime_template(sql_string(safe + piece)):
            safe += piece
    return [
        Texts(
            description=every,
            tags=tuple(p for p in PIECES if p.strip()),
            dev_tags=("x" * 100, "'\"\\{{"),
            emails=(_email(every), 'o\'brien+\\"{x}%}#}"@example.com'),
            sql=_sql(safe, every),
            sql_file=_in_file(_sql(safe, every)),
            check_sql=_check_sql(safe, safe),
            where=f"v = {sql_string(safe)}",
            expression=f"ds = {sql_string(safe)}",
            key=f"s3://fuzz-bucket/k{safe}",
            prefix=f"s3://fuzz-bucket/p{safe}/",
            folder=_one_line(f"f{safe}"),
            delimiter="'",
            unload_select=f"SELECT {sql_string(safe)} AS v",
            hive_args=(safe, "'\"\\"),
            spark_args=(safe, "'''", '"""', "\\", "a\nb", "{{ ds }}", "☃", "x" * 20_000),
            spark_conf=safe,
            trino_sql=_sql(safe, safe),
            script=_in_file(f"# {_one_line(safe)}\nprint({safe!r})\n"),
        )
    ]


def run_fuzz_probe(folder: Path, major: int) -> dict[str, Any]:
    """fuzz_probe.py over `folder` in the Airflow `major` venv, with a throw-away Airflow home."""
    with tempfile.TemporaryDirectory(prefix="fuzz-airflow-home-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.pop("PYTHONPATH", None)
        env.update(
            AIRFLOW_HOME=home,
            AIRFLOW__CORE__DAGS_FOLDER=str(folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
            AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
            PYTHONDONTWRITEBYTECODE="1",
        )
        done = subprocess.run(
            [str(python_of_line(major)), str(FUZZ_PROBE), str(PROBE), str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_SECONDS * 10,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "major",
    [pytest.param(m, id=f"airflow{m}") for m in (3, 2)],
)
def test_hostile_dags_load_in_dagbag_and_carry_the_text(tmp_path: Path, major: int) -> None:
    """A batch of generated pipelines plus the hand-written corpus, one DagBag per Airflow line:
    no import error, and every DAG object holds the spec's text exactly."""
    stage = LINES[major]
    named = write_pipelines(tmp_path / "pipelines", corpus() + collect(10))
    result = render(validated(tmp_path / "pipelines", named), stage, tmp_path)
    assert_source_carries(result, named, stage)
    write_render(result, tmp_path / "out")
    data = run_fuzz_probe(tmp_path / "out" / "dags", major)
    assert data["airflow_version"].startswith(f"{major}.")
    assert data["import_errors"] == {}
    assert sorted(data["dags"]) == sorted(named)
    wrong = {
        name: mismatches(from_probe(data["dags"][name], major), t, stage)
        for name, t in named.items()
    }
    assert {name: found for name, found in wrong.items() if found} == {}
