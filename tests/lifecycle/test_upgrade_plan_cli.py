"""`mwaa-elt upgrade plan` end to end: the examples promoted into dev (moto's S3 on loopback),
re-rendered from dev's manifest and gated under MWAA's Airflow 3.0.6 environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from upgrade_support import set_airflow_version

from mwaa_elt import cli
from mwaa_elt.errors import MwaaEltError

runner = CliRunner()


@pytest.fixture(autouse=True)
def promotion_without_dagbag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Promotion's own DagBag gate is tested in tests/promote; here only the rehearsal's runs."""
    from mwaa_elt.promote import gates

    monkeypatch.setattr(gates, "dagbag_gate", lambda render, stage, root, names: None)
    monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)


def mwaa(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    if isinstance(result.exception, MwaaEltError):
        return result.exception.exit_code, result.output + "\n".join(result.exception.messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def rehearse(stage: str, version: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        cli.app, ["upgrade", "plan", "--stage", stage, "--to", version, "--json", *extra]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def promote_dev() -> None:
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 0, output


def gates_of(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        p["name"]: {gate["gate"]: gate["status"] for gate in p["gates"]}
        for p in report["pipelines"]
    }


def test_rehearsing_the_examples_from_2_11_0_to_3_0_6_passes_from_dev_manifest_not_the_working_tree(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote_dev()
    # The target's environment counts as missing: the rehearsal builds it before the DagBag
    # (the build itself is `airflow-envs build`'s, tested in tests/check; here it is recorded).
    from mwaa_elt import airflow_environments
    from mwaa_elt.errors import ConfigError
    from mwaa_elt.lifecycle import rehearsal

    built: list[str] = []

    def missing(version: str, root: Path | None = None) -> Path:
        raise ConfigError(f"the environment of {version} is missing")

    monkeypatch.setattr(rehearsal, "airflow_python", missing)
    monkeypatch.setattr(
        airflow_environments, "build", lambda env, uv: built.append(env.version) or True
    )
    # The working tree moves on with SQL that would fail validation: the rehearsal must not see it.
    sql = project / "pipelines/movielens_scifi/sql/create_scifi.sql"
    sql.write_text("SELEC broken FROM\n")
    code, report = rehearse("dev", "3.0.6")
    assert code == 0, report
    assert report["ok"] is True
    assert built == ["3.0.6"]
    assert report["route"]["kind"] == "in-place" and report["route"]["crosses_major"] is True
    gates = gates_of(report)
    assert set(gates) == {"movielens_emr", "movielens_scifi", "scifi_quality"}
    for name, results in gates.items():
        assert results == dict.fromkeys(("validate", "render", "dagbag", "packages"), "passed"), (
            name
        )
    assert report["airflow3_lint"]["ran"] is True
    assert not [f for f in report["airflow3_lint"]["findings"] if f["blocking"]]
    assert not [f for f in report["requirements"] if f["blocking"]]
    written = json.loads((project / "build/upgrade/dev-3.0.6.json").read_text())
    assert written == report
    # What the specs expose: the EMR pipeline reads {{ ds }} under a cron schedule, the quality
    # pipeline runs on the sci-fi dataset (an asset on Airflow 3: no logical date).
    topics = {
        (d["pipeline"], d["topic"], d["path"], d["line"]) for d in report["runtime_differences"]
    }
    assert (
        "movielens_emr",
        "cron-logical-date",
        "(bundle) pipelines/movielens_emr/movielens_emr.yaml",
        29,
    ) in topics
    assert any(t[:2] == ("scifi_quality", "asset-schedule") for t in topics)


def test_from_2_10_3_the_route_is_a_new_environment_in_mwaa_words(project: Path) -> None:
    set_airflow_version(project, "dev", "2.10.3")
    code, report = rehearse("dev", "3.0.6", "--report", "elsewhere/route.json")
    assert json.loads((project / "elsewhere/route.json").read_text()) == report
    route = report["route"]
    assert route["kind"] == "new-environment"
    assert "2.10.3 and lower" in route["reason"] and "new environment" in route["reason"]
    assert "2.11.2" in route["reason"]  # the in-place alternative: the latest 2.11.x first
    assert route["documentation"].endswith("migrating-to-new-mwaa.html")
    assert code == 0 and report["pipelines"] == []  # nothing live, nothing else fails


def test_an_unknown_target_is_refused_naming_the_supported_versions(project: Path) -> None:
    code, output = mwaa("upgrade", "plan", "--stage", "staging", "--to", "3.1.0")
    assert code == 1
    assert "--to 3.1.0: not an Airflow version Amazon MWAA offers" in output
    assert "2.11.0, 2.11.2, 3.0.6" in output
    assert not (project / "build/upgrade").exists()


def test_a_plugin_using_an_api_airflow_3_removed_is_caught_with_file_line(project: Path) -> None:
    plugin = project / "infra/environment/plugins/mwaa_elt_plugins/legacy.py"
    plugin.write_text(
        "from airflow.operators.dummy import DummyOperator\n"
        "\n"
        "\n"
        "def placeholder(task_id: str) -> DummyOperator:\n"
        "    return DummyOperator(task_id=task_id)\n"
    )
    code, report = rehearse("staging", "3.0.6")  # staging runs 2.11.0
    assert code == 1 and report["ok"] is False
    blocking = [f for f in report["airflow3_lint"]["findings"] if f["blocking"]]
    legacy = "infra/environment/plugins/mwaa_elt_plugins/legacy.py"
    assert [(f["path"], f["line"], f["col"], f["rule"]) for f in blocking] == [
        (legacy, 4, 34, "AIR302"),  # the return annotation
        (legacy, 5, 12, "AIR302"),  # the call
    ]
    assert "DummyOperator" in blocking[0]["message"]
    # The person reading the table sees the same, and the exit code says it failed.
    code, output = mwaa("upgrade", "plan", "--stage", "staging", "--to", "3.0.6")
    assert code == 1 and "Traceback" not in output
    assert f"{legacy}:5:12: AIR302" in output and "rehearsal FAILED" in output
    # Not crossing into Airflow 3: the rule does not apply, and is not run.
    code, report = rehearse("staging", "2.11.2")
    assert code == 0 and report["airflow3_lint"] == {"ran": False, "findings": []}


def test_python_in_the_startup_script_is_linted_at_its_own_lines(project: Path) -> None:
    startup = project / "infra/environment/startup.sh"
    startup.write_text(
        startup.read_text()
        + "python3 - <<'EOF'\n"
        + "from airflow.operators.dummy import DummyOperator\n"
        + "DummyOperator(task_id='warm_up')\n"
        + "EOF\n"
    )
    line = len(startup.read_text().splitlines()) - 1  # the DummyOperator call
    code, report = rehearse("staging", "3.0.6")
    assert code == 1
    found = [(f["path"], f["line"]) for f in report["airflow3_lint"]["findings"]]
    assert ("infra/environment/startup.sh", line) in found


def test_a_requirement_pin_conflicting_with_the_target_constraints_is_caught_with_file_line(
    project: Path,
) -> None:
    requirements = project / "infra/environment/requirements.txt"
    lines = requirements.read_text().splitlines()
    lines.append("apache-airflow-providers-amazon==9.8.0  # what 2.11.0's constraints pin")
    requirements.write_text("\n".join(lines) + "\n")
    code, report = rehearse("staging", "3.0.6")
    assert code == 1
    conflicts = [f for f in report["requirements"] if f["blocking"]]
    assert [(f["path"], f["line"], f["col"], f["kind"]) for f in conflicts] == [
        ("infra/environment/requirements.txt", len(lines), 1, "conflict")
    ]
    assert "apache-airflow-providers-amazon==9.12.0" in conflicts[0]["message"]
    # The pin is what staging's own Airflow 2.11.0 constrains: no conflict there.
    code, report = rehearse("staging", "2.11.0")
    assert code == 0 and report["route"]["kind"] == "unchanged"
    assert not [f for f in report["requirements"] if f["blocking"]]


def test_a_live_pipeline_reading_a_context_key_airflow_3_removed_fails_validation_there(
    project: Path,
) -> None:
    spec = project / "pipelines/scifi_quality/scifi_quality.yaml"
    text = spec.read_text().replace("'{{ run_id }}'", "'{{ next_ds }}'")
    assert text != spec.read_text()
    spec.write_text(text)
    # Every stage of the scratch project runs Airflow 2 now, so dev accepts it.
    set_airflow_version(project, "dev", "2.11.0")
    promote_dev()
    code, report = rehearse("dev", "3.0.6")
    assert code == 1
    gates = gates_of(report)
    assert gates["scifi_quality"]["validate"] == "failed"
    assert gates["movielens_scifi"]["validate"] == "passed"
    assert gates["movielens_scifi"]["render"] == "not run"
    failed = next(p for p in report["pipelines"] if p["name"] == "scifi_quality")
    messages = [m for g in failed["gates"] for m in g["messages"]]
    assert any("scifi_quality.yaml" in m and "next_ds" in m for m in messages), messages
    removed = [d for d in report["runtime_differences"] if d["topic"] == "removed-context"]
    assert [(d["pipeline"], d["path"].rsplit("/", 1)[-1]) for d in removed] == [
        ("scifi_quality", "scifi_quality.yaml")
    ]


def test_dag_files_that_do_not_load_under_the_target_fail_the_dagbag_gate(project: Path) -> None:
    # A template snapshot whose DAG files only break on Airflow 3: dev (2.11.0) takes them.
    template = project / "dag_templates/dag.py.j2"
    template.write_text(
        template.read_text()
        + '{% if view.airflow_major == 3 %}\nraise RuntimeError("not ready for Airflow 3")\n'
        + "{% endif %}\n"
    )
    promote_dev()
    code, report = rehearse("dev", "3.0.6")
    assert code == 1
    for name, results in gates_of(report).items():
        assert (results["render"], results["dagbag"]) == ("passed", "failed"), name
    messages = [m for p in report["pipelines"] for g in p["gates"] for m in g["messages"]]
    assert len(messages) == 3 and all("not ready for Airflow 3" in m for m in messages)
