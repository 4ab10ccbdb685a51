"""The package gate: a DAG may only import what the stage's MWAA environment installs."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from mwaa_elt.check import CheckReport, FileReport, Finding
from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import gates
from mwaa_elt.promote.gates import required_distributions, requirements_gate
from mwaa_elt.render import RenderedPipeline, RenderResult
from mwaa_elt.render.imports import imported_modules
from mwaa_elt.scratch import MEMORY_FOLDER, memory_folder
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "infra" / "environment" / "requirements.txt"


def _render(stage: Stage, dag: str) -> RenderResult:
    pipeline = RenderedPipeline("sales", "pipelines/sales/sales.yaml", "dags/sales.py", (), "0", imported_modules(dag))  # fmt: skip
    return RenderResult(stage.name, stage.airflow.version, {"dags/sales.py": dag.encode()}, {"sales": pipeline})  # fmt: skip


def test_imports_map_to_distributions() -> None:
    dag = b"""
import json
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.common.sql.operators.sql import SQLCheckOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
import great_expectations as gx
from .local import helper
"""
    assert required_distributions(imported_modules(dag)) == {
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-common-sql",
        "apache-airflow-providers-cncf-kubernetes",
        "great-expectations",
    }


def test_imports_nested_in_any_statement_are_found() -> None:
    dag = b"""
def build():
    import boto3
class Factory:
    def make(self):
        with open("x") as f:
            from great_expectations import core
if True:
    pass
else:
    import pandas
try:
    import numpy
except ImportError:
    import scipy
finally:
    import requests
for _ in []:
    pass
else:
    import yaml
match 1:
    case 1:
        import jinja2
f = lambda: __import__("not_a_statement")
"""
    found = required_distributions(imported_modules(dag))
    reference = set()
    for node in ast.walk(ast.parse(dag)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            reference |= required_distributions(imported_modules(ast.unparse(node)))
    assert found == reference
    assert {"boto3", "great-expectations", "pandas", "scipy", "requests", "jinja2"} <= found


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_generated_imports_are_provided_on_every_stage(
    stages: dict[str, Stage], stage_name: str
) -> None:
    stage = stages[stage_name]
    golden = (ROOT / "tests/render/golden" / stage_name / "movielens_scifi.py").read_text()
    imported = requirements_gate(_render(stage, golden), stage, REQUIREMENTS)
    # The gate looked at the DAG's imports (not at nothing) and found them all installed.
    assert "apache-airflow-providers-amazon" in imported["sales"]


def test_a_provider_the_stage_does_not_install_is_refused_with_what_to_do(
    stages: dict[str, Stage],
) -> None:
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    with pytest.raises(ConfigError) as raised:
        requirements_gate(_render(stages["staging"], dag), stages["staging"], REQUIREMENTS)
    (message,) = raised.value.messages
    assert message.startswith("sales: imports apache-airflow-providers-snowflake")
    assert "add it to requirements.txt" in message
    assert "pulumi up --stack staging" in message


def test_a_package_listed_in_the_requirements_passes(
    stages: dict[str, Stage], tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS.read_text() + "apache-airflow-providers-snowflake\n")
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    imported = requirements_gate(_render(stages["staging"], dag), stages["staging"], requirements)
    assert imported == {"sales": {"apache-airflow-providers-snowflake"}}


def test_only_the_named_pipelines_are_checked(stages: dict[str, Stage]) -> None:
    dag = "from airflow.providers.snowflake.operators.snowflake import SnowflakeSqlApiOperator\n"
    assert (
        requirements_gate(_render(stages["staging"], dag), stages["staging"], REQUIREMENTS, [])
        == {}
    )


def test_the_imports_a_render_read_are_gated_without_parsing_the_file_again(
    stages: dict[str, Stage],
) -> None:
    stage = stages["staging"]
    pipeline = RenderedPipeline(
        "sales",
        "pipelines/sales/sales.yaml",
        "dags/sales.py",
        (),
        "0",
        dag_imports=("airflow.providers.snowflake.operators.snowflake", "json"),
    )
    # Not Python: the gate takes what the render read, and would fail parsing this.
    render = RenderResult(stage.name, stage.airflow.version, {"dags/sales.py": b"("}, {"sales": pipeline})  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        requirements_gate(render, stage, REQUIREMENTS)
    assert raised.value.messages[0].startswith("sales: imports apache-airflow-providers-snowflake")


def _many(stage: Stage, count: int) -> RenderResult:
    files, pipelines = {}, {}
    for index in range(count):
        name, dag_path = f"p{index:03d}", f"dags/p{index:03d}.py"
        files[dag_path] = f"# {name}\n".encode()
        pipelines[name] = RenderedPipeline(name, f"pipelines/{name}/{name}.yaml", dag_path, (), "0", ())  # fmt: skip
    return RenderResult(stage.name, stage.airflow.version, files, pipelines)


def _loaded(folder: Path, version: str, *, project_root: Path) -> CheckReport:
    """What run_dagbag reports for `folder`: every file, one failing when it says so."""
    reports = []
    for path in sorted(folder.iterdir()):
        broken = path.name == "p007.py"
        finding = Finding("imports", not broken, "boom" if broken else "ok")
        reports.append(FileReport(path, (path.stem,), 0.01, (finding,)))
    return CheckReport(version, folder, 1.0, 2.0, tuple(reports))


class _Probes:
    """`start_probe`, `send_folders`, `run_started_each` and `cancel_probe` as the gates call
    them, loading each folder as `_loaded` does and remembering what was started, sent ahead,
    loaded and ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[SimpleNamespace] = []
        self.sent: list[tuple[SimpleNamespace, list[Path]]] = []
        self.loads: list[tuple[SimpleNamespace, list[Path]]] = []
        self.shares: list[int] = []  # DAG files per folder, at the last load
        self.cancelled: list[SimpleNamespace] = []
        monkeypatch.setattr(gates, "start_probe", self.start)
        monkeypatch.setattr(gates, "send_folders", self.send)
        monkeypatch.setattr(gates, "run_started_each", self.run_each)
        monkeypatch.setattr(gates, "cancel_probe", self.cancelled.append)

    def start(self, version: str, *, project_root: Path, niceness: int = 0) -> SimpleNamespace:
        probe = SimpleNamespace(airflow_version=version, niceness=niceness, sent=None)
        self.started.append(probe)
        return probe

    def send(self, probe: SimpleNamespace, folders: list[Path]) -> None:
        assert probe.sent is None
        probe.sent = tuple(folders)
        self.sent.append((probe, list(folders)))

    def run_each(self, probe: SimpleNamespace, folders: list[Path]) -> tuple[CheckReport, ...]:
        assert probe.sent in (None, tuple(folders))  # what was sent ahead is not sent again
        self.loads.append((probe, list(folders)))
        self.shares = [len(list(folder.iterdir())) for folder in folders]
        return tuple(_loaded(f, probe.airflow_version, project_root=ROOT) for f in folders)


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_the_dagbag_gate_loads_each_dag_once_in_one_share_per_core(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path, workers: str
) -> None:
    monkeypatch.setenv("MWAA_ELT_WORKERS", workers)
    probes = _Probes(monkeypatch, tmp_path)
    stage = stages["dev"]
    names = [f"p{index:03d}" for index in range(10) if index != 7]
    report = gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)
    ((probe, folders),) = probes.loads  # one Airflow import, whatever the number of shares
    assert probes.started == [probe] and probe.niceness == 0  # nothing started ahead
    assert len(folders) == int(workers)  # one forked process per share
    assert sum(probes.shares) == len(names) and max(probes.shares) - min(probes.shares) <= 1
    if memory_folder(1 << 20) is not None:  # written where the system keeps files in memory
        assert {folder.parent.parent for folder in folders} == {MEMORY_FOLDER}
    assert sorted(f.path.name for f in report.files) == sorted(f"{n}.py" for n in names)
    assert report.airflow_version == stage.airflow.version and report.ok
    assert probes.cancelled == [probe]  # ended, with anything it forked

    with pytest.raises(ConfigError) as raised:  # a failure in any share refuses the promotion
        gates.dagbag_gate(_many(stage, 10), stage, ROOT, [f"p{i:03d}" for i in range(10)])
    assert raised.value.messages[0] == "p007.py: imports: boom"
    assert "integrity gate failed" in raised.value.messages[-1]


def test_the_dagbag_gate_loads_every_share_in_the_probe_started_ahead(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """`start_dagbag_gate` starts Airflow while the promotion renders, below the promotion's
    priority; the gate loads every share from it (each forked once Airflow is imported), and a
    started probe whose gate never runs is ended."""
    monkeypatch.setenv("MWAA_ELT_WORKERS", "2")
    probes = _Probes(monkeypatch, tmp_path)
    stage = stages["dev"]
    gates.start_dagbag_gate(stage.airflow.version, ROOT)
    gates.start_dagbag_gate(stage.airflow.version, ROOT)  # one per version and project
    (ahead,) = probes.started
    assert ahead.niceness > 0  # below the promotion's own priority
    names = [f"p{index:03d}" for index in range(10) if index != 7]
    report = gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)
    assert [(probe, len(folders)) for probe, folders in probes.loads] == [(ahead, 2)]
    assert probes.shares == [5, 4]
    assert sorted(f.path.name for f in report.files) == sorted(f"{n}.py" for n in names)
    assert probes.cancelled == [ahead]  # released (a no-op for a probe that has run)

    gates.start_dagbag_gate(stage.airflow.version, ROOT)  # a gate that never runs
    gates.cancel_started_gates()
    assert probes.cancelled == [ahead, probes.started[1]]
    gates.dagbag_gate(_many(stage, 10), stage, ROOT, names)  # nothing started: one started now
    assert probes.loads[-1][0] is probes.started[2] and probes.started[2].niceness == 0


def test_a_promotion_starts_airflow_from_the_stack_files_and_ends_it_when_refused(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """`start_gates_of` starts each environment's probe from the stage's name alone (the CLI
    calls it before importing what talks to AWS); a promotion refused before its gates, here on
    its route, ends what was started."""
    from mwaa_elt.project import Project
    from mwaa_elt.promote.opening import PromoteRequest, open_promotion

    probes = _Probes(monkeypatch, tmp_path)
    stacks = ROOT / "stacks"
    gates.start_gates_of("no-such-stage", stacks, ROOT)
    gates.start_gates_of("dev", tmp_path / "no-stacks", ROOT)
    assert probes.started == []
    gates.start_gates_of("staging", stacks, ROOT)
    (ahead,) = probes.started
    assert ahead.airflow_version == stages["staging"].airflow.version and ahead.niceness > 0

    with pytest.raises(ConfigError, match="promotes from dev"):
        open_promotion(Project(ROOT), PromoteRequest(to="staging"))
    assert probes.cancelled == [ahead] and probes.started == [ahead]


def test_gates_the_opening_started_are_not_looked_up_again_by_the_command(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """`mwaa-elt` opens the promotion before its command line, starting the gates' Airflow
    (`opening._open`): the command's `start_gates_of` then reads no stack file again. Once
    they are ended, it starts them anew."""
    import mwaa_elt.stage

    probes = _Probes(monkeypatch, tmp_path)
    gates.start_dagbag_gate(stages["dev"].airflow.version, ROOT)  # as the opening does
    loaded = mwaa_elt.stage.load_all_stages

    def load_all_stages(*_: object) -> None:
        raise AssertionError("the stack files were read again")

    monkeypatch.setattr(mwaa_elt.stage, "load_all_stages", load_all_stages)
    gates.start_gates_of("dev", ROOT / "stacks", ROOT)
    assert len(probes.started) == 1
    gates.cancel_started_gates()
    monkeypatch.setattr(mwaa_elt.stage, "load_all_stages", loaded)
    gates.start_gates_of("dev", ROOT / "stacks", ROOT)
    assert len(probes.started) == 2
    gates.cancel_started_gates()


def test_the_gate_takes_the_airflow_the_command_started_before_importing_itself(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """A probe `airflow_ahead` started from the project's record is the gate's: none is started
    anew; one no gate takes ends with the gates that were started."""
    probes = _Probes(monkeypatch, tmp_path)
    ended: list[SimpleNamespace] = []
    monkeypatch.setattr(gates.airflow_ahead, "cancel_probe", ended.append)
    monkeypatch.setattr(gates.airflow_ahead, "_ahead", {})
    version = stages["dev"].airflow.version

    def ahead(for_version: str) -> SimpleNamespace:
        probe = SimpleNamespace(airflow_version=for_version, niceness=10, sent=None)
        gates.airflow_ahead._ahead[for_version, ROOT] = probe
        return probe

    recorded = ahead(version)
    untaken = ahead("2.11.0")  # a version no environment of the stage runs any more
    gates.start_dagbag_gate(version, ROOT)
    assert probes.started == [] and gates._started[version, ROOT] is recorded
    gates.cancel_started_gates()
    assert probes.cancelled == [recorded] and ended == [untaken]
    assert gates.airflow_ahead._ahead == {}

    gates.start_dagbag_gate(version, ROOT)  # nothing started ahead any more: started now
    (started,) = probes.started
    assert gates._started[version, ROOT] is started and started.niceness > 0
    gates.cancel_started_gates()


def test_the_dagbag_gate_takes_the_loads_sent_ahead_of_it_and_reports_on_its_own_files(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    """`start_dagbag_loads` sends a render's DAG files to the probe started ahead as soon as
    the render is whole, so they load while the promotion bundles, plans and runs the
    requirements gate; the gate then waits for those loads instead of writing and sending the
    files itself, and reports on the files it gates only."""
    monkeypatch.setenv("MWAA_ELT_WORKERS", "2")
    probes = _Probes(monkeypatch, tmp_path)
    stage, render = stages["dev"], _many(stages["dev"], 10)
    gates.start_dagbag_loads(render, stage.airflow.version, ROOT)  # no probe started: no-op
    assert probes.sent == []
    gates.start_dagbag_gate(stage.airflow.version, ROOT)
    gates.start_dagbag_loads(render, stage.airflow.version, ROOT)
    gates.start_dagbag_loads(render, stage.airflow.version, ROOT)  # sent once
    ((ahead, folders),) = probes.sent
    assert ahead is probes.started[0] and ahead.niceness > 0
    assert sorted(p.name for f in folders for p in f.iterdir()) == [
        f"p{i:03d}.py" for i in range(10)
    ]

    # p007 fails to load, but the plan writes the other nine only: the gate passes on them.
    names = [f"p{index:03d}" for index in range(10) if index != 7]
    report = gates.dagbag_gate(render, stage, ROOT, names)
    assert probes.loads == [(ahead, folders)] and len(probes.started) == 1
    assert sorted(f.path.name for f in report.files) == sorted(f"{n}.py" for n in names)
    assert report.ok and probes.cancelled == [ahead]
    assert not any(folder.exists() for folder in folders)  # the files sent ahead are removed


def test_loads_sent_ahead_of_other_bytes_are_ended_and_the_gate_loads_its_own(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    probes = _Probes(monkeypatch, tmp_path)
    stage, render = stages["dev"], _many(stages["dev"], 10)
    gates.start_dagbag_gate(stage.airflow.version, ROOT)
    gates.start_dagbag_loads(render, stage.airflow.version, ROOT)
    ((ahead, sent),) = probes.sent
    changed = _many(stage, 10)
    changed.files["dags/p003.py"] = b"# p003, edited since\n"
    report = gates.dagbag_gate(changed, stage, ROOT, ["p003"])
    assert probes.cancelled[0] is ahead and not any(folder.exists() for folder in sent)
    ((probe, folders),) = probes.loads
    assert probe is probes.started[1] and probe.niceness == 0 and folders != sent
    assert [f.path.name for f in report.files] == ["p003.py"]


def test_loads_sent_ahead_of_a_gate_that_never_runs_end_with_their_probe(
    stages: dict[str, Stage], monkeypatch, tmp_path: Path
) -> None:
    probes = _Probes(monkeypatch, tmp_path)
    stage = stages["dev"]
    gates.start_dagbag_gate(stage.airflow.version, ROOT)
    gates.start_dagbag_loads(_many(stage, 3), stage.airflow.version, ROOT)
    gates.cancel_started_gates(keep=["2.0.0"])  # another version's gate runs: not this one
    ((ahead, folders),) = probes.sent
    assert probes.cancelled == [ahead] and not any(folder.exists() for folder in folders)
    assert probes.loads == []
