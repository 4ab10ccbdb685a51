"""The stage model: every name derived from the stack file, and every bad config refused clearly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES
from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import load_stage

REQUIRED_SHOW_KEYS = {
    "stage", "region", "account_id", "airflow_version", "environment_name", "source_bucket",
    "dags_prefix", "execution_role_name", "athena_workgroup", "athena_results_uri",
    "glue_database_prefix", "data_lake_bucket", "emr_service_role", "emr_instance_profile",
    "emr_log_uri", "promotes_from",
}  # fmt: skip


def test_stages_differ_in_the_settings_that_matter(stages):
    dev, staging, prod = stages["dev"], stages["staging"], stages["prod"]
    assert dev.config.environment_class != prod.config.environment_class
    assert dev.config.webserver_access_mode == "PUBLIC_ONLY"
    assert prod.config.webserver_access_mode == "PRIVATE_ONLY"
    assert (dev.config.network.nat_gateways, prod.config.network.nat_gateways) == (1, 2)
    assert prod.kms_key_alias == "alias/mwaa-elt-prod" and dev.kms_key_alias is None
    assert len({s.account_id for s in stages.values()}) == 3
    assert len({s.config.athena.bytes_scanned_cutoff_per_query for s in stages.values()}) == 3
    assert staging.config.log_levels != prod.config.log_levels
    assert prod.production and not staging.production and not dev.production


def test_promotion_order_comes_from_the_stack_files(stages):
    assert [stages[s].promotes_from for s in ("dev", "staging", "prod")] == [None, "dev", "staging"]


def test_names_are_derived_and_stage_scoped(stages):
    dev = stages["dev"]
    assert dev.environment_name == "mwaa-elt-dev"
    assert dev.source_bucket == "airflow-mwaa-elt-dev-111111111111"
    assert (
        dev.athena_workgroup_arn == "arn:aws:athena:eu-west-1:111111111111:workgroup/mwaa-elt-dev"
    )
    assert dev.athena_results_uri.startswith(f"s3://{dev.source_bucket}/")
    assert dev.glue_databases == {
        "movielens": "dev_movielens",
        "analytics": "dev_analytics",
        "ops": "dev_ops",
    }
    assert dev.emr_log_uri == f"s3://{dev.source_bucket}/emr-logs/"
    assert dev.secrets_connections_prefix == "mwaa-elt/dev/connections"
    assert dev.tags == {
        "cost-center": "data-dev",
        "stage": "dev",
        "project": "mwaa-elt",
        "owner": "data-platform",
    }
    values = json.dumps(list(dev.summary().values()))
    for other in ("staging", "prod"):
        assert not re.search(rf"\b{other}\b", values), other


def test_stage_show_json_contract(project_root):
    result = CliRunner().invoke(
        app, ["stage", "show", "staging", "--json", "-C", str(project_root)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= REQUIRED_SHOW_KEYS
    assert data["promotes_from"] == "dev" and data["dags_prefix"] == "dags/"
    assert data["airflow_version"] in MWAA_AIRFLOW_RELEASES


def _edit(project: Path, stage: str, **changes) -> None:
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data["config"].pop(key, None)
        else:
            data["config"][key] = value
    path.write_text(yaml.safe_dump(data))


def _errors(project: Path, stage: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stage(project / "stacks", stage)
    return caught.value.messages


BAD_CONFIGS = [
    ("dev", {"mwaa-elt:accountId": None}, "mwaa-elt:accountId: missing"),
    ("dev", {"mwaa-elt:maxWorkerz": 3}, "mwaa-elt:maxWorkerz: unknown key; did you mean 'maxWorkers'?"),
    ("dev", {"mwaa-elt:environmentClass": "mw1.huge"}, "'mw1.huge' is not an MWAA environment class; allowed: mw1.micro"),
    ("dev", {"mwaa-elt:minWorkers": 5, "mwaa-elt:maxWorkers": 2}, "mwaa-elt:maxWorkers: is 2, less than minWorkers (5)"),
    ("dev", {"mwaa-elt:schedulers": 6}, "mwaa-elt:schedulers: 6 is outside the allowed range 2-5"),
    ("dev", {"mwaa-elt:schedulers": 1}, "mwaa-elt:schedulers: 1 is outside the allowed range 2-5"),
    ("dev", {"mwaa-elt:airflowVersion": "2.9.2"}, "mwaa-elt:airflowVersion: '2.9.2' is not an Airflow version MWAA offers; allowed: 2.10.1, 2.10.3, 2.11.0, 2.11.2, 3.0.6, 3.2.1, 3.3.1"),
    ("dev", {"mwaa-elt:network": {"vpcCidr": "10.10.0.1/16"}}, "mwaa-elt:network.vpcCidr: '10.10.0.1/16' is not a valid IPv4 CIDR block"),
    ("dev", {"mwaa-elt:network": {"vpcCidr": "10.0.0.0/8"}}, "mwaa-elt:network.vpcCidr: '10.0.0.0/8' has prefix /8; allowed: /16 to /24"),
    ("prod", {"mwaa-elt:webserverAccessMode": "PUBLIC_ONLY"}, "mwaa-elt:webserverAccessMode: a production stage must use PRIVATE_ONLY"),
    ("prod", {"mwaa-elt:encryption": {"customerManagedKey": False}}, "mwaa-elt:encryption.customerManagedKey: a production stage must encrypt"),
    ("dev", {"mwaa-elt:webserverAccessMode": "OPEN"}, "mwaa-elt:webserverAccessMode: 'OPEN' is not allowed; allowed: 'PRIVATE_ONLY', 'PUBLIC_ONLY'"),
    ("dev", {"mwaa-elt:logLevels": {"task": "LOUD"}}, "mwaa-elt:logLevels.task: 'LOUD' is not allowed"),
    ("dev", {"aws:region": None}, "aws:region: missing"),
    ("dev", {"mwaa-elt:glueDatabases": ["Movie-Lens"]}, "'Movie-Lens' is not a Glue database name"),
    ("staging", {"mwaa-elt:promotesFrom": "qa"}, "mwaa-elt:promotesFrom: 'qa' has no stack file"),
    ("dev", {"mwaa-elt:dataLake": {"readPrefixes": ["prod/"]}}, "'prod/' is the stage 'prod''s own prefix"),
    ("dev", {"mwaa-elt:tags": {"stage": "x"}}, "mwaa-elt:tags: tag stage is set by mwaa-elt"),
    ("dev", {"mwaa-elt:minWorkers": "many"}, "mwaa-elt:minWorkers: Input should be a valid integer"),
    # IAM role names are ASCII: a Unicode letter or digit is refused before Pulumi imports.
    ("dev", {"mwaa-elt:adopt": {"environment": "mwaa-elt-dev", "bucket": "airflow-mwaa-elt-dev-111111111111", "executionRole": "rôle"}}, "mwaa-elt:adopt.executionRole: 'rôle' is not valid"),
    ("dev", {"mwaa-elt:adopt": {"environment": "mwaa-elt-dev", "bucket": "airflow-mwaa-elt-dev-111111111111", "executionRole": "role_\u0663"}}, "mwaa-elt:adopt.executionRole: 'role_\u0663' is not valid"),
]  # fmt: skip


@pytest.mark.parametrize(("stage", "changes", "expected"), BAD_CONFIGS)
def test_bad_config_is_refused_with_file_key_and_reason(scratch_project, stage, changes, expected):
    _edit(scratch_project, stage, **changes)
    messages = _errors(scratch_project, stage)
    path = f"stacks/Pulumi.{stage}.yaml: "
    assert any(expected in m for m in messages), messages
    assert all(m.startswith(path) or m.startswith(str(scratch_project)) for m in messages)


@pytest.mark.parametrize(("stage", "changes", "expected"), BAD_CONFIGS[:6])
def test_cli_reports_bad_config_with_exit_1_and_no_traceback(
    scratch_project, stage, changes, expected
):
    _edit(scratch_project, stage, **changes)
    result = CliRunner().invoke(app, ["stage", "show", stage, "-C", str(scratch_project)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)  # the console entry point prints it


def test_every_problem_of_a_file_is_reported_at_once(scratch_project):
    _edit(
        scratch_project,
        "dev",
        **{"mwaa-elt:schedulers": 9, "mwaa-elt:environmentClass": "big", "mwaa-elt:owner": None},
    )
    messages = _errors(scratch_project, "dev")
    assert len(messages) == 3, messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config: [1, 2", "line 1: invalid YAML"),
        (
            "config:\n  aws:region: eu-west-1\n  aws:region: eu-west-2\n",
            "duplicate key 'aws:region'",
        ),
        ("- just\n- a list\n", "expected a mapping with a 'config:' key"),
        ("config: 3\n", "config: missing, or not a mapping"),
        ("config: {}\nsurprise: 1\n", "surprise: unknown top-level key"),
        ("config:\n  myapp:thing: 1\n  aws:region: eu-west-1\n", "myapp:thing: unknown key"),
    ],
)
def test_malformed_stack_files(scratch_project, text, expected):
    (scratch_project / "stacks" / "Pulumi.dev.yaml").write_text(text)
    assert any(expected in m for m in _errors(scratch_project, "dev"))


def test_binary_stack_file_is_refused(scratch_project):
    (scratch_project / "stacks" / "Pulumi.dev.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert _errors(scratch_project, "dev") == ["stacks/Pulumi.dev.yaml: not UTF-8 text"] or any(
        "not UTF-8 text" in m for m in _errors(scratch_project, "dev")
    )


def test_unknown_stage_names_the_known_ones(scratch_project):
    assert any(
        re.search(r"known stages: dev, staging, prod", m) for m in _errors(scratch_project, "qa")
    )
