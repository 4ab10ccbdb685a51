"""Promotion into a stage whose stack has `cutover:` (moto's S3 over HTTP): every pipeline goes
to both environments, the green copy rendered for the green Airflow line and paused."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_promote_cli import (  # noqa: F401  (fixtures)
    edit_sql,
    gated,
    mwaa,
    mwaa_json,
    project,
    real_dagbag_gate,
    versions,
)

from mwaa_elt.promote import airflow_ahead
from mwaa_elt.promote.store import make_client
from mwaa_elt.stage import Stage
from mwaa_elt.stage.green import GREEN_PATHS

PIPELINES = ("movielens_emr", "movielens_scifi", "scifi_quality")
GREEN_VERSION = "3.0.6"  # staging's own is 2.11.0


def set_cutover(root: Path, stage: str, block: dict[str, Any] | None) -> None:
    path = root / "stacks" / f"Pulumi.{stage}.yaml"
    raw = yaml.safe_load(path.read_text())
    if block is None:
        raw["config"].pop("mwaa-elt:cutover", None)
    else:
        raw["config"]["mwaa-elt:cutover"] = block
    path.write_text(yaml.safe_dump(raw))


@pytest.fixture
def cutover(project: Path) -> Path:  # noqa: F811
    set_cutover(
        project, "staging", {"airflowVersion": GREEN_VERSION, "environmentClass": "mw1.medium"}
    )
    return project


@pytest.fixture
def gate_versions(monkeypatch) -> list[tuple[str, str, list[str]]]:
    """(environment, Airflow version, pipelines) of every DagBag gate the promotion asked for."""
    from mwaa_elt.promote import gates

    asked: list[tuple[str, str, list[str]]] = []
    monkeypatch.setattr(
        gates,
        "dagbag_gate",
        lambda render, stage, root, names: asked.append(
            (stage.environment_name, stage.airflow.version, sorted(names))
        ),
    )
    monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)
    return asked


def promote(*args: str) -> dict[str, Any]:
    code, result = mwaa_json("promote", *args, "--yes", "--skip-mwaa-checks")
    assert code == 0, result
    return result


def read(stage: Stage, key: str) -> str:
    s3 = make_client("s3", stage.region)
    return s3.get_object(Bucket=stage.source_bucket, Key=key)["Body"].read().decode()


def dag_call(source: str) -> dict[str, Any]:
    """The keyword arguments of the `DAG(...)` call of a rendered file, as literals."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG":
            return {
                k.arg: ast.literal_eval(k.value)
                for k in node.keywords
                if k.arg in {"dag_id", "is_paused_upon_creation"}
            }
    raise AssertionError("no DAG(...) call")


def test_a_cutover_stage_gets_every_pipeline_in_both_environments(cutover, stages, gate_versions):
    promote("--to", "dev")
    result = promote("--from", "dev", "--to", "staging")
    staging = stages["staging"]
    # Both environments' Airflow start first in the next promotion into staging.
    assert airflow_ahead.recorded(cutover, "staging") == [staging.airflow.version, GREEN_VERSION]
    blue = {p["pipeline"]: p for p in result["pipelines"]}
    green = {p["pipeline"]: p for p in result["cutover"]["pipelines"]}
    assert result["cutover"]["environment"] == "mwaa-elt-staging-green"
    assert set(blue) == set(green) == set(PIPELINES)
    assert {p["action"] for p in (*blue.values(), *green.values())} == {"added"}
    for name in PIPELINES:
        assert blue[name]["dag_key"] == f"dags/{name}.py"
        assert green[name]["dag_key"] == f"green/dags/{name}.py"
        # The same source version goes live in both; each is rendered for its own line.
        assert blue[name]["source_hash"] == green[name]["source_hash"]
        assert blue[name]["rendered_hash"] != green[name]["rendered_hash"]
        blue_dag, green_dag = (
            read(staging, blue[name]["dag_key"]),
            read(staging, f"green/dags/{name}.py"),
        )
        assert dag_call(green_dag)["is_paused_upon_creation"] is True
        assert dag_call(blue_dag)["is_paused_upon_creation"] is False
        assert dag_call(green_dag)["dag_id"] == dag_call(blue_dag)["dag_id"]
        assert "from airflow.sdk import" in green_dag and "from airflow.sdk import" not in blue_dag
    # Gated under each environment's own Airflow, dev's promotion once, staging's twice.
    assert [(env, version) for env, version, _ in gate_versions] == [
        ("mwaa-elt-dev", "3.0.6"),
        ("mwaa-elt-staging", "2.11.0"),
        ("mwaa-elt-staging-green", GREEN_VERSION),
    ]
    # Each environment's manifest records what is live in it; blue's keeps its place.
    keys = versions(staging)
    assert staging.manifest_key in keys and f"{GREEN_PATHS.tool_state}manifest.json" in keys
    blue_manifest = read(staging, staging.manifest_key)
    assert "green/dags/" not in blue_manifest
    assert "green/dags/movielens_scifi.py" in read(
        staging, f"{GREEN_PATHS.tool_state}manifest.json"
    )


def test_both_environments_reads_end_before_either_is_validated_or_rendered(
    cutover, stages, gate_versions, monkeypatch
):
    """Validation and rendering fork workers only from a process running no other thread
    (`parallel.worker_count`): green's reads, still answered while blue is prepared, are
    waited for first. (The emulator's own request threads run in this test's process.)"""
    import threading
    import time

    from mwaa_elt.promote import workflow
    from mwaa_elt.promote.store import StageStore
    from mwaa_elt.stage.green import GreenStage

    promote("--to", "dev")
    listing = StageStore.current_etags

    def green_answers_late(self: StageStore, prefix: str) -> dict[str, str]:
        if isinstance(self.stage, GreenStage):
            time.sleep(0.5)
        return listing(self, prefix)

    prepare = workflow._prepare
    readers_when_prepared: list[list[str]] = []

    def prepare_noting_readers(*args: Any, **kwargs: Any) -> Any:
        readers_when_prepared.append(
            [t.name for t in threading.enumerate() if t.name.startswith("mwaa-elt-opening")]
        )
        return prepare(*args, **kwargs)

    monkeypatch.setattr(StageStore, "current_etags", green_answers_late)
    monkeypatch.setattr(workflow, "_prepare", prepare_noting_readers)
    result = promote("--from", "dev", "--to", "staging")
    assert result["cutover"]["environment"] == "mwaa-elt-staging-green"
    assert readers_when_prepared == [[], []]


def test_one_changed_sql_rewrites_both_copies_and_nothing_else(cutover, stages, gate_versions):
    promote("--to", "dev")
    promote("--from", "dev", "--to", "staging")
    again = promote("--from", "dev", "--to", "staging")
    assert (again["uploaded"], again["cutover"]["uploaded"]) == (0, 0)  # nothing changed
    edit_sql(cutover, "changed once")
    promote("--to", "dev")
    before = versions(stages["staging"])
    result = promote("--from", "dev", "--to", "staging")
    for environment in (result, result["cutover"]):
        actions = {p["pipeline"]: p["action"] for p in environment["pipelines"]}
        assert actions == {
            "movielens_emr": "unchanged",
            "movielens_scifi": "updated",
            "scifi_quality": "unchanged",
        }
    after = versions(stages["staging"])
    dags = {k for k in after if after[k] != before.get(k) and k.endswith(".py") and "dags/" in k}
    assert dags == {"dags/movielens_scifi.py", "green/dags/movielens_scifi.py"}
    for key in dags:
        assert "-- changed once" in read(stages["staging"], key)
    assert gate_versions[-2:] == [
        ("mwaa-elt-staging", "2.11.0", ["movielens_scifi"]),
        ("mwaa-elt-staging-green", GREEN_VERSION, ["movielens_scifi"]),
    ]


def test_without_cutover_promotion_leaves_green_alone_and_blue_untouched(
    cutover, stages, gate_versions
):
    promote("--to", "dev")
    promote("--from", "dev", "--to", "staging")
    set_cutover(cutover, "staging", None)
    before = versions(stages["staging"])
    edit_sql(cutover, "after the cutover block is gone")
    promote("--to", "dev")
    code, output = mwaa(
        "promote", "--from", "dev", "--to", "staging", "--yes", "--skip-mwaa-checks"
    )
    assert code == 0, output
    # Promoted into the stage's own environment only, then told what green left behind.
    assert "promoting into the green environment" not in output
    bucket = stages["staging"].source_bucket
    assert "3 DAG file(s) of the former green environment mwaa-elt-staging-green" in output
    assert f"aws s3 rm --recursive s3://{bucket}/green/dags/" in output
    assert f"aws s3 rm --recursive s3://{bucket}/.mwaa-elt/green/" in output
    after = versions(stages["staging"])
    changed = {k for k in after if after[k] != before.get(k)}
    assert not any(k.startswith(("green/", GREEN_PATHS.tool_state)) for k in changed)
    assert "dags/movielens_scifi.py" in changed
    # Nothing was deleted from either environment's DAG folder.
    assert all(
        f"dags/{name}.py" in after and f"green/dags/{name}.py" in after for name in PIPELINES
    )


def test_json_names_the_leftovers_of_a_removed_cutover(cutover, stages, gate_versions):
    promote("--to", "dev")
    promote("--from", "dev", "--to", "staging")
    set_cutover(cutover, "staging", None)
    result = promote("--from", "dev", "--to", "staging")
    assert "cutover" not in result
    assert result["cutover_leftovers"] == {
        "environment": "mwaa-elt-staging-green",
        "bucket": stages["staging"].source_bucket,
        "dag_keys": [f"green/dags/{name}.py" for name in PIPELINES],
        "prefixes": ["green/dags/", ".mwaa-elt/green/"],
    }


def test_status_shows_the_green_environments_pipelines(cutover, stages, gate_versions):
    promote("--to", "dev")
    promote("--from", "dev", "--to", "staging")
    s3 = make_client("s3", stages["staging"].region)
    bucket = stages["staging"].source_bucket
    s3.put_object(Bucket=bucket, Key="green/dags/movielens_emr.py", Body=b"# edited by hand")
    code, status = mwaa_json("status", "--stage", "staging")
    assert code == 0, status
    assert status["drifted"] == []  # blue's copy is as promoted
    green = status["cutover"]
    assert green["environment"] == "mwaa-elt-staging-green"
    assert sorted(p["pipeline"] for p in green["pipelines"]) == list(PIPELINES)
    assert {p["dag_key"] for p in green["pipelines"]} == {
        f"green/dags/{name}.py" for name in PIPELINES
    }
    assert green["drifted"] == ["movielens_emr"]
    code, output = mwaa("status", "--stage", "staging")
    assert code == 0, output
    assert "status staging (green environment mwaa-elt-staging-green)" in output


def test_the_integrity_gate_loads_green_dags_under_the_green_airflow_before_any_write(
    project,  # noqa: F811
    stages,
    real_dagbag_gate,  # noqa: F811
):
    # dev runs 3.0.6; a cutover to the 2.x line renders and loads green's DAGs under 2.11.0.
    set_cutover(project, "dev", {"airflowVersion": "2.11.0", "environmentClass": "mw1.small"})
    first = promote("--to", "dev")
    assert (first["uploaded"], first["cutover"]["uploaded"]) == (5, 3)  # scripts are shared
    # A template that breaks only on Airflow 2: blue's gate passes, green's fails.
    template = project / "dag_templates/dag.py.j2"
    template.write_text(
        template.read_text()
        + "{% if view.airflow_major == 2 %}\nraise RuntimeError('broken on the 2.x line')\n{% endif %}\n"
    )
    edit_sql(project, "with a template broken on 2.x")
    before = versions(stages["dev"])
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1
    assert "integrity gate failed under Airflow 2.11.0" in output
    assert "broken on the 2.x line" in output
    assert versions(stages["dev"]) == before  # neither environment was written


def retire_blue(root: Path, name: str) -> Stage:
    """Apply the stack change `mwaa-elt cutover finish` prints, as the user would."""
    from mwaa_elt.stage import load_stage
    from mwaa_elt.stage.retire import retire_blue_change

    path = root / "stacks" / f"Pulumi.{name}.yaml"
    stage = load_stage(root / "stacks", name)
    path.write_text(retire_blue_change(stage, path.read_text(), path.name).after)
    return load_stage(root / "stacks", name)


def test_once_blue_is_retired_promotion_status_and_rollback_use_green_alone(
    cutover, stages, gate_versions
):
    """After `servingEnvironment: green`, green's manifest (written during the cutover) is the
    stage's: status reads it in sync, promotion and rollback write green's folder and state
    only, gated under green's Airflow; blue's folder and manifest are never written again."""
    promote("--to", "dev")
    promote("--from", "dev", "--to", "staging")
    retired = retire_blue(cutover, "staging")
    assert retired.environment_name == "mwaa-elt-staging-green"
    code, status = mwaa_json("status", "--stage", "staging")
    assert code == 0, status
    assert "cutover" not in status
    assert {p["dag_key"] for p in status["pipelines"]} == {
        f"green/dags/{name}.py" for name in PIPELINES
    }
    assert {p["drift"] for p in status["pipelines"]} == {"in sync"}

    before = versions(retired)
    edit_sql(cutover, "after blue was retired")
    promote("--to", "dev")
    gate_versions.clear()
    result = promote("--from", "dev", "--to", "staging")
    assert "cutover" not in result and "cutover_leftovers" not in result
    # The first promotion after the change rewrites every green DAG file once: it is rendered
    # as the stage's own now (not paused on creation), gated under green's Airflow alone.
    assert {p["pipeline"]: p["action"] for p in result["pipelines"]} == dict.fromkeys(
        PIPELINES, "updated"
    )
    assert gate_versions == [("mwaa-elt-staging-green", GREEN_VERSION, list(PIPELINES))]
    after = versions(retired)
    changed = {k for k in after if after[k] != before.get(k)}
    assert "green/dags/movielens_scifi.py" in changed
    assert all(k.startswith(("green/dags/", ".mwaa-elt/green/")) for k in changed), changed
    promoted = read(retired, "green/dags/movielens_scifi.py")
    assert "-- after blue was retired" in promoted
    # Green is the stage's own now: a DAG it sees for the first time is not paused.
    assert dag_call(promoted)["is_paused_upon_creation"] is False

    code, output = mwaa(
        "rollback", "movielens_scifi", "--stage", "staging", "--yes", "--skip-mwaa-checks"
    )
    assert code == 0, output
    rolled = versions(retired)
    assert {k for k in rolled if rolled[k] != after.get(k)} <= {
        k for k in rolled if k.startswith(("green/dags/", ".mwaa-elt/green/"))
    }
    assert "-- after blue was retired" not in read(retired, "green/dags/movielens_scifi.py")
