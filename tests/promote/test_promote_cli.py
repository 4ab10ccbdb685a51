"""`mwaa-elt promote / status / rollback` end to end: real specs, DagBag gate, moto's S3 over HTTP,
MWAA through botocore's Stubber."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from airflow_lines import environment_overrides
from botocore.stub import Stubber
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.errors import MwaaEltError
from mwaa_elt.promote import airflow_ahead, lock, workflow
from mwaa_elt.promote.mwaa import MwaaEnvironment
from mwaa_elt.promote.sandbox import create_stage_buckets
from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage

runner = CliRunner()


@pytest.fixture
def project(scratch_project: Path, project_root: Path, endpoint: str, monkeypatch) -> Path:
    for folder in ("pipelines", "dag_templates", "infra/environment"):
        shutil.copytree(project_root / folder, scratch_project / folder)
    for variable, python in environment_overrides().items():
        monkeypatch.setenv(variable, python)
    monkeypatch.chdir(scratch_project)
    return scratch_project


@pytest.fixture(autouse=True)
def gated(monkeypatch, request) -> list[list[str]]:
    """The DagBag gate costs an Airflow start-up (seconds): every test records which pipelines
    it was asked to load instead, unless it requests the `real_dagbag_gate` fixture."""
    asked: list[list[str]] = []
    if "real_dagbag_gate" not in request.fixturenames:
        from mwaa_elt.promote import gates

        monkeypatch.setattr(
            gates, "dagbag_gate", lambda render, stage, root, names: asked.append(sorted(names))
        )
        monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)
    return asked


@pytest.fixture
def real_dagbag_gate() -> None:
    """Requested by a test that runs Airflow's DagBag for the integrity gate, as promote does."""


def mwaa(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    """Run the CLI as a user would: user errors become their exit codes and messages."""
    result = runner.invoke(cli.app, list(args))
    shown = result.stdout if stdout_only else result.output
    if isinstance(result.exception, MwaaEltError):
        return result.exception.exit_code, shown + "\n".join(result.exception.messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, shown


def mwaa_json(*args: str) -> tuple[int, dict[str, Any]]:
    """Run the CLI with --json; its standard output must be one JSON document."""
    code, output = mwaa(*args, "--json", stdout_only=True)
    return code, json.loads(output)


def promote_json(*args: str) -> dict[str, Any]:
    code, result = mwaa_json("promote", *args, "--yes", "--skip-mwaa-checks")
    assert code == 0, result
    return result


def versions(stage: Stage) -> dict[str, int]:
    """How many versions every key of the stage's bucket has."""
    s3 = make_client("s3", stage.region)
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stage.source_bucket):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def dag(stage: Stage, name: str) -> str:
    s3 = make_client("s3", stage.region)
    key = f"{stage.dags_prefix}{name}.py"
    return s3.get_object(Bucket=stage.source_bucket, Key=key)["Body"].read().decode()


def edit_sql(project: Path, text: str) -> None:
    path = project / "pipelines/movielens_scifi/sql/create_scifi.sql"
    path.write_text(path.read_text() + f"\n-- {text}\n")


def test_first_promotion_writes_everything_and_a_second_writes_nothing(project, stages, gated):
    assert airflow_ahead.recorded(project, "dev") == []
    first = promote_json("--to", "dev")
    # Validated: the next promotion into dev starts this Airflow before its command line loads.
    assert airflow_ahead.recorded(project, "dev") == [stages["dev"].airflow.version]
    assert first["stage"] == "dev" and first["from"] == "working-tree"
    assert {p["action"] for p in first["pipelines"]} == {"added"}
    assert (first["uploaded"], first["deleted"], first["unchanged"]) == (
        5,
        0,
        0,
    )  # 3 DAGs, 2 scripts
    before = versions(stages["dev"])
    assert sum(k.startswith("dags/") for k in before) == 3
    second = promote_json("--to", "dev")
    assert (second["uploaded"], second["unchanged"]) == (0, 3)
    assert len(gated) == 1  # nothing to write: no gate to pass
    assert versions(stages["dev"]) == before


def test_the_plan_table_lists_what_changes_and_counts_the_rest(project, stages):
    promote_json("--to", "dev")
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks", stdout_only=True)
    assert code == 0 and "┃ pipeline" not in output, output  # nothing changes: no table
    assert "0 added, 0 updated, 3 unchanged, 0 removed; nothing to write" in output
    assert "dev is up to date: nothing to promote" in output
    edit_sql(project, "one row")
    code, output = mwaa("promote", "--to", "dev", "--plan", stdout_only=True)
    cells = [line.split("│")[1].strip() for line in output.splitlines() if line.startswith("│")]
    assert code == 0 and [name for name in cells if name] == ["movielens_scifi"], output
    assert "0 added, 1 updated, 2 unchanged, 0 removed;" in output


def test_one_changed_sql_file_uploads_exactly_one_dag(project, stages, gated):
    promote_json("--to", "dev")
    assert gated == [["movielens_emr", "movielens_scifi", "scifi_quality"]]
    before = versions(stages["dev"])
    edit_sql(project, "only this one")
    result = promote_json("--to", "dev")
    actions = {p["pipeline"]: p["action"] for p in result["pipelines"]}
    assert actions == {
        "movielens_emr": "unchanged",
        "movielens_scifi": "updated",
        "scifi_quality": "unchanged",
    }
    assert result["uploaded"] == 1
    after = versions(stages["dev"])
    grew = {k for k in after if after[k] != before.get(k)}
    assert {
        k for k in grew if not k.startswith((".mwaa-elt/bundles/", stages["dev"].lock_key))
    } == {
        "dags/movielens_scifi.py",
        stages["dev"].manifest_key,
        *(k for k in grew if k.startswith(stages["dev"].history_prefix + "movielens_scifi/")),
    }
    # The changed pipeline's history moves into one object of its own; no other one is written.
    assert sum(k.startswith(stages["dev"].history_prefix) for k in grew) == 1
    assert "-- only this one" in dag(stages["dev"], "movielens_scifi")
    assert gated[-1] == ["movielens_scifi"]  # only the DAG the promotion writes is loaded


def test_plan_prints_a_diff_and_writes_nothing(project, stages):
    promote_json("--to", "dev")
    before = versions(stages["dev"])
    edit_sql(project, "planned change")
    code, plan = mwaa_json("promote", "--to", "dev", "--plan")
    assert code == 0, plan
    assert plan["plan_only"] is True and plan["planned"] == {"uploads": 1, "deletes": 0}
    # The gates are part of the plan: those it passed, on the one DAG it writes (no MWAA one).
    assert [(g["gate"], g["pipelines"]) for g in plan["gates"]] == [
        ("packages", ["movielens_scifi"]),
        ("dagbag", ["movielens_scifi"]),
    ]
    (changed,) = [p for p in plan["pipelines"] if p["action"] == "updated"]
    added = [line for line in changed["diff"].splitlines() if line.startswith("+")]
    assert any("-- planned change" in line for line in added)
    assert versions(stages["dev"]) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "dev", "--to", "prod"), "promotes from staging only"),
        (("--to", "staging"), "promote --from dev --to staging"),
        (("--from", "prod", "--to", "dev"), "promotes from the working tree only"),
    ],
)
def test_a_promotion_skipping_a_stage_is_refused(project, stages, args, message):
    code, output = mwaa("promote", *args, "--yes", "--skip-mwaa-checks")
    assert code == 1 and message in output
    assert not any(versions(stages[s]) for s in stages)


def test_staging_gets_devs_recorded_version_not_the_working_tree(project, stages):
    promote_json("--to", "dev")
    dev_record = mwaa_json("status", "--stage", "dev")[1]["pipelines"]
    edit_sql(project, "not yet in dev")
    template = project / "dag_templates/dag.py.j2"
    template.write_text("# a template change after dev was promoted\n" + template.read_text())
    result = promote_json("--from", "dev", "--to", "staging")
    assert result["from"] == "dev"
    # dev stored its three bundles as one pack, and staging re-rendered from it.
    dev_store = StageStore(stages["dev"], make_client("s3", stages["dev"].region))
    records = dev_store.load_manifest()[0].pipelines.values()
    assert len({r.bundle_key for r in records}) == 1 and all(r.bundle_range for r in records)
    staged = mwaa_json("status", "--stage", "staging")[1]["pipelines"]
    assert [p["source_hash"] for p in staged] == [p["source_hash"] for p in dev_record]
    assert all(p["promoted_from"] == "dev" for p in staged)
    text = dag(stages["staging"], "movielens_scifi")
    assert "not yet in dev" not in text
    assert "a template change" not in text
    for name in ("movielens_emr", "movielens_scifi", "scifi_quality"):
        body = dag(stages["staging"], name)
        assert "staging" in body
        for foreign in ("111111111111", "dev_", "mwaa-elt-dev", "333333333333", "prod_"):
            assert foreign not in body, (name, foreign)


def test_prod_asks_and_refuses_without_yes_when_not_interactive(project, stages):
    promote_json("--to", "dev")
    promote_json("--from", "dev", "--to", "staging")
    code, output = mwaa("promote", "--from", "staging", "--to", "prod", "--skip-mwaa-checks")
    assert code == 1 and "pass --yes" in output
    assert versions(stages["prod"]) == {}
    assert promote_json("--from", "staging", "--to", "prod")["uploaded"] == 5


def test_prune_removes_only_pipelines_this_tool_wrote(project, stages):
    promote_json("--to", "dev")
    s3 = make_client("s3", stages["dev"].region)
    s3.put_object(Bucket=stages["dev"].source_bucket, Key="dags/hand_written.py", Body=b"# ours")
    shutil.rmtree(project / "pipelines/scifi_quality")
    kept = promote_json("--to", "dev")
    assert "scifi_quality" not in {p["pipeline"] for p in kept["pipelines"]}
    pruned = promote_json("--to", "dev", "--prune")
    assert [p["action"] for p in pruned["pipelines"] if p["pipeline"] == "scifi_quality"] == [
        "removed"
    ]
    assert pruned["deleted"] == 1
    live = StageStore(stages["dev"], s3).latest_versions("dags/")
    assert set(live) == {"dags/hand_written.py", "dags/movielens_emr.py", "dags/movielens_scifi.py"}
    code, output = mwaa("promote", "--to", "dev", "--prune", "movielens_emr", "--yes")
    assert code == 2 and "--prune" in output


def test_rollback_restores_the_previous_version_and_to_names_one(project, stages):
    promote_json("--to", "dev")
    original = dag(stages["dev"], "movielens_scifi")
    edit_sql(project, "second")
    promote_json("--to", "dev")
    second = dag(stages["dev"], "movielens_scifi")
    code, result = mwaa_json(
        "rollback", "movielens_scifi", "--stage", "dev", "--yes", "--skip-mwaa-checks"
    )
    assert code == 0, result
    assert result["pipelines"][0]["action"] == "rolled_back"
    assert dag(stages["dev"], "movielens_scifi") == original
    status = mwaa_json("status", "--stage", "dev")[1]
    record = next(p for p in status["pipelines"] if p["pipeline"] == "movielens_scifi")
    assert record["promoted_from"] == "rollback" and record["drift"] == "in sync"
    second_hash = record["history"][0]
    code, output = mwaa(
        "rollback",
        "movielens_scifi",
        "--stage",
        "dev",
        "--to",
        second_hash[:10],
        "--yes",
        "--skip-mwaa-checks",
    )
    assert code == 0, output
    assert dag(stages["dev"], "movielens_scifi") == second
    code, output = mwaa(
        "rollback", "movielens_scifi", "--stage", "dev", "--to", "ffffff", "--skip-mwaa-checks"
    )
    assert code == 1 and "no such version" in output


def test_status_reports_drift_and_unmanaged_dags(project, stages):
    promote_json("--to", "dev")
    s3 = make_client("s3", stages["dev"].region)
    bucket = stages["dev"].source_bucket
    s3.put_object(Bucket=bucket, Key="dags/movielens_emr.py", Body=b"# edited in the console")
    s3.put_object(Bucket=bucket, Key="dags/someone_elses.py", Body=b"# not ours")
    code, status = mwaa_json("status", "--stage", "dev")
    assert code == 0, status
    assert status["drifted"] == ["movielens_emr"]
    assert status["unmanaged_dags"] == ["dags/someone_elses.py"]
    live_hash = next(p for p in status["pipelines"] if p["pipeline"] == "movielens_emr")[
        "source_hash"
    ]
    code, output = mwaa(
        "rollback", "movielens_emr", "--stage", "dev", "--to", live_hash, "--yes",
        "--skip-mwaa-checks",
    )  # fmt: skip
    assert code == 0, output
    assert mwaa_json("status", "--stage", "dev")[1]["drifted"] == []


def test_a_held_lock_refuses_a_second_promoter_and_force_unlock_breaks_it(project, stages):
    store = StageStore(stages["dev"], make_client("s3", stages["dev"].region))
    lock.acquire(store, "arn:aws:iam::111111111111:user/alice on laptop (pid 7)")
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1
    assert "stage dev is locked by arn:aws:iam::111111111111:user/alice on laptop (pid 7)" in output
    assert store.load_manifest()[1] is None  # nothing was promoted
    assert promote_json("--to", "dev", "--force-unlock")["uploaded"] == 5
    assert lock.read_lock(store) is None


def test_the_integrity_gate_loads_every_dag_under_the_target_airflow(
    project, stages, real_dagbag_gate, monkeypatch
):
    monkeypatch.setenv("MWAA_ELT_WORKERS", "2")  # the DAGs shared by two Airflow processes
    promote_json("--to", "dev")
    result = promote_json("--from", "dev", "--to", "staging")  # Airflow 3.0.6 → 2.11.0
    assert result["uploaded"] == 5
    broken = project / "dag_templates/dag.py.j2"
    broken.write_text(broken.read_text() + "\nraise RuntimeError('broken template')\n")
    edit_sql(project, "with a broken template")
    before = versions(stages["dev"])
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1
    assert "imports" in output and "broken template" in output
    assert "integrity gate failed under Airflow 3.0.6" in output
    assert versions(stages["dev"]) == before


def test_the_sandbox_has_no_mwaa_so_promote_says_to_skip_its_checks(project, stages):
    code, output = mwaa("promote", "--to", "dev", "--yes")
    assert code == 1, output  # not 3: retrying cannot help, there is no MWAA to reach
    assert "the sandbox has no MWAA: pass --skip-mwaa-checks" in output
    assert "Could not connect" not in output
    assert versions(stages["dev"]) == {}  # refused before anything was written
    # The plan alone calls no MWAA API, so it works in the sandbox as it did.
    assert mwaa("promote", "--to", "dev", "--plan")[0] == 0


def test_a_loopback_endpoint_is_the_sandbox_and_a_remote_one_is_not(monkeypatch, stages):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for url in ("http://127.0.0.1:5000", "http://localhost:4566", "http://[::1]:5000"):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        with pytest.raises(MwaaEltError, match="the sandbox has no MWAA") as raised:
            workflow.mwaa_environment(stages["dev"])
        assert raised.value.exit_code == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://mwaa.vpce.example.com")
    assert workflow.mwaa_environment(stages["dev"]).name == stages["dev"].environment_name
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert workflow.mwaa_environment(stages["dev"]).name == stages["dev"].environment_name


# -- MWAA gates through botocore's Stubber ----------------------------------------------------


def _stubbed(monkeypatch, stages, statuses: list[str], rest: list[tuple[str, dict]]) -> Stubber:
    client = boto3.client(
        "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for status in statuses:
        stubber.add_response(
            "get_environment",
            {"Environment": {"Name": "mwaa-elt-dev", "Status": status}},
            {"Name": "mwaa-elt-dev"},
        )
    for path, body in rest:
        stubber.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": body},
            {"Name": "mwaa-elt-dev", "Path": path, "Method": "GET", **_query(path)},
        )
    stubber.activate()
    monkeypatch.setattr(
        workflow, "mwaa_environment", lambda stage, profile=None: MwaaEnvironment(stage, client)
    )
    return stubber


def _query(path: str) -> dict[str, Any]:
    return {"QueryParameters": {"limit": 100, "offset": 0}} if path == "/importErrors" else {}


def _import_error(name: str) -> dict[str, Any]:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return {
        "import_errors": [
            {
                "filename": f"/usr/local/airflow/dags/{name}.py",
                "timestamp": later,
                "stack_trace": "NameError: name 'oops' is not defined",
            }
        ],
        "total_entries": 1,
    }


def test_an_environment_that_is_not_available_refuses_the_promotion(project, stages, monkeypatch):
    stubber = _stubbed(monkeypatch, stages, ["UPDATING"], [])
    code, output = mwaa("promote", "--to", "dev", "--yes")
    assert code == 1 and "mwaa-elt-dev is UPDATING, not AVAILABLE" in output
    assert versions(stages["dev"]) == {}
    stubber.assert_no_pending_responses()


def test_dags_parsed_by_airflow_pass_verification(project, stages, monkeypatch):
    promote_json("--to", "dev")
    edit_sql(project, "verified")
    stubber = _stubbed(monkeypatch, stages, ["AVAILABLE"], [])
    # Airflow serves a DAG's source once it parsed it: serve whatever the bucket holds now.
    monkeypatch.setattr(MwaaEnvironment, "import_errors", lambda self: [])
    monkeypatch.setattr(
        MwaaEnvironment, "dag_source", lambda self, dag_id: dag(stages["dev"], dag_id)
    )
    code, result = mwaa_json("promote", "--to", "dev", "--yes")
    assert code == 0, result
    verification = result["verification"]
    assert verification["parsed"] == ["movielens_scifi"] and verification["pending"] == []
    stubber.assert_no_pending_responses()


def test_an_import_error_after_apply_is_reported(project, stages, monkeypatch):
    promote_json("--to", "dev")
    edit_sql(project, "breaks the import")
    stubber = _stubbed(
        monkeypatch, stages, ["AVAILABLE"], [("/importErrors", _import_error("movielens_scifi"))]
    )
    code, result = mwaa_json("promote", "--to", "dev", "--yes")
    assert code == 1
    assert "NameError" in result["verification"]["import_errors"]["movielens_scifi"]
    assert result["rolled_back"] == []
    assert "breaks the import" in dag(stages["dev"], "movielens_scifi")
    stubber.assert_no_pending_responses()


def test_rollback_on_error_restores_the_previous_dag(project, stages, monkeypatch):
    promote_json("--to", "dev")
    before = dag(stages["dev"], "movielens_scifi")
    edit_sql(project, "breaks the import")
    stubber = _stubbed(
        monkeypatch, stages, ["AVAILABLE"], [("/importErrors", _import_error("movielens_scifi"))]
    )
    code, result = mwaa_json("promote", "--to", "dev", "--yes", "--rollback-on-error")
    assert code == 1
    assert result["rolled_back"] == ["movielens_scifi"]
    assert dag(stages["dev"], "movielens_scifi") == before
    status = mwaa_json("status", "--stage", "dev")[1]
    record = next(p for p in status["pipelines"] if p["pipeline"] == "movielens_scifi")
    assert record["promoted_from"] == "rollback" and record["drift"] == "in sync"
    stubber.assert_no_pending_responses()


def test_a_raced_write_of_the_same_bytes_is_in_sync_because_drift_is_decided_by_content(
    project, stages
):
    """The recorded bytes live under another S3 version (a fenced run's late write of the same
    file): the object still has the recorded ETag, so `status` and `promote` both see the
    recorded content live, and nothing is written."""
    promote_json("--to", "dev")
    s3 = make_client("s3", stages["dev"].region)
    bucket, key = stages["dev"].source_bucket, "dags/scifi_quality.py"
    live = s3.get_object(Bucket=bucket, Key=key)
    s3.put_object(Bucket=bucket, Key=key, Body=live["Body"].read(), Metadata=live["Metadata"])
    code, status = mwaa_json("status", "--stage", "dev")
    assert code == 0 and status["drifted"] == []
    before = versions(stages["dev"])
    assert promote_json("--to", "dev")["uploaded"] == 0
    assert versions(stages["dev"]) == before


def test_a_live_dag_with_another_etag_but_our_bytes_is_recorded_by_one_rerun(project, stages):
    """A DAG object written by mwaa-elt whose ETag is not the recorded one (a late write under
    SSE-KMS, where each upload gets its own ETag): `status` says unfinished; the same command
    records the live version and ETag, writing no DAG, and status is clean."""
    promote_json("--to", "dev")
    store = StageStore(stages["dev"], make_client("s3", stages["dev"].region))
    manifest, etag = store.load_manifest()
    manifest = store.load_histories(manifest, manifest.pipelines)
    record = manifest.pipelines["scifi_quality"]
    stale = record.model_copy(update={"dag_etag": '"0123456789abcdef0123456789abcdef"'})
    store.write_manifest(
        manifest.model_copy(update={"pipelines": {**manifest.pipelines, "scifi_quality": stale}}),
        etag,
    )
    code, status = mwaa_json("status", "--stage", "dev")
    drift = {p["pipeline"]: p["drift"] for p in status["pipelines"]}
    assert drift["scifi_quality"] == "unfinished promotion"
    before = versions(stages["dev"])

    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")

    assert code == 0, output
    assert "the live version of 1 DAG file(s) recorded" in " ".join(output.split())
    after = versions(stages["dev"])
    assert {k: n for k, n in after.items() if k.startswith("dags/")} == {
        k: n for k, n in before.items() if k.startswith("dags/")
    }  # no DAG written
    code, status = mwaa_json("status", "--stage", "dev")
    assert status["drifted"] == [] and status["lock"] is None
    head = store.client.head_object(Bucket=store.bucket, Key="dags/scifi_quality.py")
    assert store.load_manifest()[0].pipelines["scifi_quality"].dag_etag == head["ETag"]
    assert promote_json("--to", "dev")["uploaded"] == 0  # and it stays converged


def test_other_bytes_under_a_recorded_key_are_rewritten_by_the_same_command(project, stages):
    promote_json("--to", "dev")
    s3 = make_client("s3", stages["dev"].region)
    bucket, key = stages["dev"].source_bucket, "dags/movielens_emr.py"
    recorded = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=b"# another promotion's file")
    result = promote_json("--to", "dev")
    actions = {p["pipeline"]: p["action"] for p in result["pipelines"]}
    assert actions["movielens_emr"] == "repaired" and result["uploaded"] == 1
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == recorded
    assert mwaa_json("status", "--stage", "dev")[1]["drifted"] == []


def _live_lock_elsewhere(stage: Stage) -> lock.LockInfo:
    store = StageStore(stage, make_client("s3", stage.region))
    now = datetime.now(UTC).replace(microsecond=0)
    info = lock.LockInfo(
        owner="arn:aws:iam::111111111111:user/bob on ci-runner (pid 42)",
        token="bobs-token",
        acquired_at=(now - timedelta(minutes=10)).isoformat(),
        expires_at=(now + timedelta(minutes=4)).isoformat(),
        host="ci-runner",
        pid=42,
        renewed_at=(now - timedelta(seconds=30)).isoformat(),
    )
    store.put(stage.lock_key, json.dumps(asdict(info)).encode())
    return info


def test_force_unlock_of_a_live_holder_is_refused_without_a_terminal_unless_yes(project, stages):
    dev = stages["dev"]
    store = StageStore(dev, make_client("s3", dev.region))
    bobs = _live_lock_elsewhere(dev)
    result = runner.invoke(cli.app, ["promote", "--to", "dev", "--skip-mwaa-checks",
                                     "--force-unlock"])  # fmt: skip
    assert isinstance(result.exception, MwaaEltError) and result.exception.exit_code == 1
    message = " ".join(" ".join(result.exception.messages).split())
    assert "locked by arn:aws:iam::111111111111:user/bob on ci-runner (pid 42)" in message
    assert re.search(r"that holder is alive \(its holder renewed it \d+ s ago\)", message)
    assert "stops it before its next write" in message and "pass --yes" in message
    assert lock.read_lock(store) == bobs and store.load_manifest()[1] is None

    code, output = mwaa("promote", "--to", "dev", "--skip-mwaa-checks", "--force-unlock", "--yes")
    assert code == 0, output
    assert "warning: --force-unlock: stage dev is locked by" in " ".join(output.split())
    assert lock.read_lock(store) is None and store.load_manifest()[1] is not None


# -- deciding from inputs ----------------------------------------------------------------------


@pytest.fixture
def rendered(monkeypatch) -> list[list[str]]:
    """The pipelines each promotion renders, batch by batch."""
    from mwaa_elt.promote import builds

    batches: list[list[str]] = []
    real = builds._render

    def spy(pipelines, target, templates_dir, root):
        batches.append(sorted(pipelines))
        return real(pipelines, target, templates_dir, root)

    monkeypatch.setattr(builds, "_render", spy)
    return batches


ALL = ["movielens_emr", "movielens_scifi", "scifi_quality"]


def test_unchanged_inputs_are_neither_rendered_nor_gated(project, stages, gated, rendered):
    promote_json("--to", "dev")
    assert rendered == [ALL]
    again = promote_json("--to", "dev")
    assert (again["uploaded"], again["unchanged"]) == (0, 3)
    assert rendered[-1] == []  # three folder hashes, no render
    edit_sql(project, "one input changed")
    changed = promote_json("--to", "dev")
    assert rendered[-1] == ["movielens_scifi"] and gated[-1] == ["movielens_scifi"]
    assert {p["pipeline"]: p["action"] for p in changed["pipelines"]} == {
        "movielens_emr": "unchanged",
        "movielens_scifi": "updated",
        "scifi_quality": "unchanged",
    }


def test_a_promotion_reads_only_the_folders_changed_since_the_last(project, stages, monkeypatch):
    from mwaa_elt.promote import hash_cache

    # Files written by the fixture count as long settled, as a checkout's files do.
    monkeypatch.setattr(hash_cache, "RACY_NANOSECONDS", -10_000_000_000)
    promote_json("--to", "dev")
    read: list[str] = []
    real = hash_cache.folder_content_hash
    monkeypatch.setattr(
        hash_cache, "folder_content_hash", lambda folder: read.append(folder.name) or real(folder)
    )
    again = promote_json("--to", "dev")
    assert read == [] and (again["uploaded"], again["unchanged"]) == (0, 3)
    edit_sql(project, "one input changed")
    changed = promote_json("--to", "dev")
    assert read == ["movielens_scifi"]
    assert [p["pipeline"] for p in changed["pipelines"] if p["action"] == "updated"] == [
        "movielens_scifi"
    ]


def test_an_invalid_working_tree_leaves_no_record_of_its_folders(project, stages, monkeypatch):
    from mwaa_elt.promote import hash_cache

    monkeypatch.setattr(hash_cache, "RACY_NANOSECONDS", -10_000_000_000)
    spec = project / "pipelines/scifi_quality/scifi_quality.yaml"
    spec.write_text(spec.read_text().replace("schedule:", "schedul:", 1))
    code, _ = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1 and not (project / "build").exists()


def test_the_stage_store_leaves_timestamps_as_s3_sent_them(project, stages):
    from mwaa_elt.promote.store import store_client

    dev = stages["dev"]
    make_client("s3", dev.region).put_object(Bucket=dev.source_bucket, Key="dags/x.py", Body=b"")

    def last_modified(client: Any) -> Any:
        return client.list_objects_v2(Bucket=dev.source_bucket)["Contents"][0]["LastModified"]

    parsed, raw = (
        last_modified(make_client("s3", dev.region)),
        last_modified(store_client(dev.region)),
    )
    assert isinstance(parsed, datetime) and isinstance(raw, str)
    assert datetime.fromisoformat(raw.replace("Z", "+00:00")) == parsed


def test_a_template_change_renders_every_pipeline_again(project, stages, rendered):
    promote_json("--to", "dev")
    template = project / "dag_templates/dag.py.j2"
    template.write_text("# rendered into every DAG file\n" + template.read_text())
    result = promote_json("--to", "dev")
    assert rendered[-1] == ALL
    assert {p["action"] for p in result["pipelines"]} == {"updated"}
    promote_json("--to", "dev")
    assert rendered[-1] == []


def test_inputs_digested_otherwise_are_recorded_without_writing_a_dag(
    project, stages, rendered, monkeypatch
):
    from mwaa_elt.promote import inputs

    promote_json("--to", "dev")
    before = versions(stages["dev"])
    real = inputs.environment_digest
    monkeypatch.setattr(inputs, "environment_digest", lambda *a: "another mwaa-elt" + real(*a))
    result = promote_json("--to", "dev")
    assert rendered[-1] == ALL and (result["uploaded"], result["unchanged"]) == (0, 3)
    after = versions(stages["dev"])
    grew = {k for k in after if after[k] != before.get(k)}
    assert grew == {stages["dev"].manifest_key, stages["dev"].lock_key}  # records only
    promote_json("--to", "dev")
    assert rendered[-1] == []
    code, plan = mwaa_json("promote", "--to", "dev", "--plan")
    assert code == 0 and plan["unchanged"] == 3


def test_promoting_onward_renders_only_versions_the_target_lacks(project, stages, rendered):
    promote_json("--to", "dev")
    promote_json("--from", "dev", "--to", "staging")
    assert rendered[-1] == ALL
    count = len(rendered)
    again = promote_json("--from", "dev", "--to", "staging")
    assert all(batch == [] for batch in rendered[count:])  # nothing rendered, not even fetched
    assert (again["uploaded"], again["unchanged"]) == (0, 3)
    edit_sql(project, "next version")
    promote_json("--to", "dev")
    onward = promote_json("--from", "dev", "--to", "staging")
    assert rendered[-1] == ["movielens_scifi"]
    assert [p["pipeline"] for p in onward["pipelines"] if p["action"] == "updated"] == [
        "movielens_scifi"
    ]
    assert "next version" in dag(stages["staging"], "movielens_scifi")


def test_an_invalid_spec_is_reported_even_when_the_others_are_unchanged(project, stages):
    promote_json("--to", "dev")
    spec = project / "pipelines/scifi_quality/scifi_quality.yaml"
    spec.write_text(spec.read_text().replace("schedule:", "schedul:", 1))
    code, output = mwaa("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1 and "scifi_quality.yaml" in output and "nothing was rendered" in output


def test_a_manifest_in_the_old_format_is_read_and_rewritten_in_the_new(project, stages):
    from mwaa_elt.promote.manifest import Manifest

    dev = stages["dev"]
    promote_json("--to", "dev")
    edit_sql(project, "second")
    promote_json("--to", "dev")
    store = StageStore(dev, make_client("s3", dev.region))
    manifest, _ = store.load_manifest()
    manifest = store.load_histories(manifest, manifest.pipelines)
    # What mwaa-elt wrote before format 2: one JSON file, histories inline, no input digests.
    old = json.loads(manifest.to_bytes())
    for record in old["pipelines"].values():
        for release in (record, *record["history"]):
            release.pop("inputs")
    assert old["version"] == 1 and old["pipelines"]["movielens_scifi"]["history"]
    s3 = make_client("s3", dev.region)
    s3.put_object(Bucket=dev.source_bucket, Key=dev.manifest_key, Body=json.dumps(old).encode())
    parsed = Manifest.from_bytes(json.dumps(old).encode(), "old")
    assert parsed.pipelines["movielens_scifi"].history_loaded
    status = mwaa_json("status", "--stage", "dev")[1]
    record = next(p for p in status["pipelines"] if p["pipeline"] == "movielens_scifi")
    assert len(record["history"]) == 1 and record["drift"] == "in sync"
    result = promote_json("--to", "dev")  # no input recorded: rendered, found equal, recorded
    assert (result["uploaded"], result["unchanged"]) == (0, 3)
    body = s3.get_object(Bucket=dev.source_bucket, Key=dev.manifest_key)["Body"].read()
    assert json.loads(body)["version"] == 3 and b'"history":' not in body
    code, output = mwaa(
        "rollback", "movielens_scifi", "--stage", "dev", "--yes", "--skip-mwaa-checks"
    )
    assert code == 0, output
    assert "-- second" not in dag(dev, "movielens_scifi")


# -- a promotion takes up what `mwaa-elt render` left -------------------------------------------


def _tamper_dag(project: Path) -> None:
    dag_file = project / "build/dev/dags/movielens_emr.py"
    dag_file.write_text(dag_file.read_text() + "\n# edited by hand\n")


def _edit_sql(project: Path) -> None:
    edit_sql(project, "after the render")


def _edit_template(project: Path) -> None:
    template = project / "dag_templates/dag.py.j2"
    template.write_text("# rendered into every DAG file\n" + template.read_text())


def _what_dev_holds(stage: Stage) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    """The DAG and script objects of `stage`, and what its manifest records of each release
    (all but when, by whom and the object versions)."""
    s3 = make_client("s3", stage.region)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stage.source_bucket):
        for item in page.get("Contents", []):
            if item["Key"].startswith((stage.dags_prefix, stage.scripts_prefix)):
                body = s3.get_object(Bucket=stage.source_bucket, Key=item["Key"])["Body"]
                objects[item["Key"]] = body.read()
    manifest, _ = StageStore(stage, s3).load_manifest()
    moments = {"promoted_at", "promoted_by", "dag_version_id", "dag_etag", "history"}
    releases = {
        name: record.model_dump(exclude=moments) for name, record in manifest.pipelines.items()
    }
    return objects, releases


@pytest.mark.parametrize(
    ("rendered_for", "after_render", "rendered_anew"),
    [
        pytest.param("dev", None, [], id="nothing changed"),
        pytest.param("dev", _tamper_dag, ["movielens_emr"], id="a rendered file edited"),
        pytest.param("dev", _edit_sql, ["movielens_scifi"], id="an input edited"),
        pytest.param("dev", _edit_template, ALL, id="the templates edited"),
        pytest.param("staging", None, ALL, id="rendered for another stage"),
    ],
)
def test_a_first_promotion_takes_up_what_render_left_as_a_promotion_alone_would(
    project, stages, endpoint, rendered, rendered_for, after_render, rendered_anew
):
    # One task's SQL is not analysed: the manifest records why, whoever rendered it.
    spec = project / "pipelines/movielens_scifi/movielens_scifi.yaml"
    spec.write_text(
        spec.read_text().replace(
            'scifi"}',
            'scifi", skip_sql_checks: "reviewed by the data team"}',
        )
    )
    code, _ = mwaa("render", "--stage", rendered_for)
    assert code == 0
    if after_render is not None:
        after_render(project)
    taken = promote_json("--to", "dev")
    assert rendered[-1] == rendered_anew
    warm = _what_dev_holds(stages["dev"])

    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    create_stage_buckets(endpoint, stages)
    shutil.rmtree(project / "build")
    alone = promote_json("--to", "dev")
    assert rendered[-1] == ALL
    assert warm[1]["movielens_scifi"]["sql_unchecked"]
    assert warm == _what_dev_holds(stages["dev"])
    assert taken["pipelines"] == alone["pipelines"] and taken["uploaded"] == alone["uploaded"]


def test_the_dag_files_are_sent_to_the_gates_airflow_as_soon_as_they_are_rendered(
    project, stages, gated, monkeypatch
):
    """From the working tree and from a stage, the render goes to the DagBag gate's Airflow
    process (`start_dagbag_loads`) before anything is bundled or gated, with the Airflow version
    of the stage it is rendered for; the gate then asks for those DAG files."""
    from mwaa_elt.promote import gates

    events: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        gates,
        "start_dagbag_loads",
        lambda render, version, root: events.append(("sent", (sorted(render.pipelines), version))),
    )
    monkeypatch.setattr(
        gates,
        "dagbag_gate",
        lambda render, stage, root, names: events.append(("gated", sorted(names))),
    )
    monkeypatch.setattr(gates, "requirements_gate", lambda *args: events.append(("packages", ())))
    everything = ["movielens_emr", "movielens_scifi", "scifi_quality"]
    promote_json("--to", "dev")
    assert events == [
        ("sent", (everything, stages["dev"].airflow.version)),
        ("packages", ()),
        ("gated", everything),
    ]
    events.clear()
    promote_json("--from", "dev", "--to", "staging")
    assert events == [
        ("sent", (everything, stages["staging"].airflow.version)),
        ("packages", ()),
        ("gated", everything),
    ]
