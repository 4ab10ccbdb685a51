"""`mwaa-elt stage import`: an existing environment becomes a stack file that round-trips.

MWAA is stubbed with botocore's Stubber (which validates every response against MWAA's service
model); the subnets' VPC is looked up in moto's EC2 on loopback.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import requests
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from mwaa_elt import aws
from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.environment import airflow_configuration_options
from mwaa_elt.lifecycle.stage_import import (
    KNOWN_MEMBERS,
    ImportRequest,
    plan_import,
    translate,
)
from mwaa_elt.promote.sandbox import Sandbox, sandbox
from mwaa_elt.stage import load_stage

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "444444444444"
REGION = "eu-west-1"
LOG_MODULES = {
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
# Members MWAA returns only when the feature is used; each is refused (see test below).
REFUSED_WHEN_SET = {"KmsKey", "IdentityCenterConfiguration", "Teams"}
runner = CliRunner()


def model_members() -> set[str]:
    model = botocore.session.get_session().get_service_model("mwaa")
    return set(model.shape_for("Environment").members)


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: tuple[str, str]


def environment(
    network: Network,
    *,
    name: str,
    version: str,
    access: str,
    levels: tuple[str, ...] = ("WARNING", "INFO", "INFO", "ERROR", "WARNING"),
    **overrides: Any,
) -> dict[str, Any]:
    """GetEnvironment's Environment as MWAA returns it, with every member an adoptable one has."""
    found: dict[str, Any] = {
        "Name": name,
        "Status": "AVAILABLE",
        "Arn": f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
        "CreatedAt": datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
        "WebserverUrl": "https://0a1b2c3d-4e5f-6789-abcd-ef0123456789.c2.eu-west-1.airflow.amazonaws.com",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-mwaa-execution",
        "ServiceRoleArn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/"
        "airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA",
        "AirflowVersion": version,
        "SourceBucketArn": f"arn:aws:s3:::airflow-{name}-{ACCOUNT}",
        "DagS3Path": "dags",
        "PluginsS3Path": "plugins.zip",
        "PluginsS3ObjectVersion": "3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
        "RequirementsS3Path": "requirements.txt",
        "RequirementsS3ObjectVersion": "Ubc2d8Ji0mcVcz7hDqrp8kRxVWDS4jVZ",
        "StartupScriptS3Path": "startup.sh",
        "StartupScriptS3ObjectVersion": "w3tXhj.2nA9KsUFjqY1kLqgH7dXbf0vB",
        "AirflowConfigurationOptions": {
            "core.default_task_retries": "2",
            "celery.worker_autoscale": "5,5",
        },
        "EnvironmentClass": "mw1.medium",
        "MaxWorkers": 6,
        "MinWorkers": 2,
        "Schedulers": 3,
        "NetworkConfiguration": {
            "SubnetIds": list(network.subnets),
            "SecurityGroupIds": ["sg-0a1b2c3d4e5f60718"],
        },
        "LoggingConfiguration": {
            member: {
                "Enabled": True,
                "LogLevel": level,
                "CloudWatchLogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
                f"airflow-{name}-{log_type}",
            }
            for (member, log_type), level in zip(LOG_MODULES.items(), levels, strict=True)
        },
        "LastUpdate": {
            "Status": "FAILED",
            "CreatedAt": datetime(2025, 6, 1, 2, 30, tzinfo=UTC),
            "Error": {
                "ErrorCode": "INCORRECT_CONFIGURATION",
                "ErrorMessage": "requirements.txt could not be installed; rolled back",
            },
            "Source": "CONSOLE",
            "WorkerReplacementStrategy": "GRACEFUL",
        },
        "WeeklyMaintenanceWindowStart": "SAT:02:30",
        "Tags": {"owner": "data-platform", "cost-center": "analytics"},
        "WebserverAccessMode": access,
        "WebserverVpcEndpointService": "com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718",
        "DatabaseVpcEndpointService": "com.amazonaws.vpce.eu-west-1.vpce-svc-0f1e2d3c4b5a69788",
        "CeleryExecutorQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:airflow-celery-0a1b2c3d",
        "EndpointManagement": "SERVICE",
        "MinWebservers": 2,
        "MaxWebservers": 2,
    }
    found.update(overrides)
    return {key: value for key, value in found.items() if value is not None}


# The two environments the issue names: an Airflow 2 one with a private web server, an
# Airflow 3 one with a public one.
CASES = {
    "legacy": {"version": "2.11.0", "access": "PRIVATE_ONLY"},
    "green": {"version": "3.0.6", "access": "PUBLIC_ONLY"},
}


@pytest.fixture(scope="module")
def moto() -> Iterator[Sandbox]:
    with sandbox({}) as running:
        yield running


@pytest.fixture
def network(moto: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Network:
    requests.post(f"{moto.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    for name, value in {
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for cidr, zone in (("10.40.1.0/24", "a"), ("10.40.2.0/24", "b"))
    )
    return Network(vpc, (subnets[0], subnets[1]))


@pytest.fixture
def project(scratch_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(scratch_project)
    return scratch_project


@pytest.fixture
def mwaa(monkeypatch: pytest.MonkeyPatch, network: Network) -> Stubber:
    """A Stubber on the MWAA client `aws.client` hands out; other services are moto's."""
    client = aws.client("mwaa", REGION)
    stubber = Stubber(client)
    real = aws.client

    def handing_out(service: str, region: str, **kwargs: Any) -> Any:
        return client if service == "mwaa" else real(service, region, **kwargs)

    monkeypatch.setattr(aws, "client", handing_out)
    stubber.activate()
    yield stubber
    stubber.deactivate()


KEY_ID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch, mwaa: Stubber) -> Stubber:
    """A Stubber on the KMS client `aws.client` hands out (MWAA's stays stubbed too)."""
    client = aws.client("kms", REGION)
    stubber = Stubber(client)
    real = aws.client

    def handing_out(service: str, region: str, **kwargs: Any) -> Any:
        return client if service == "kms" else real(service, region, **kwargs)

    monkeypatch.setattr(aws, "client", handing_out)
    stubber.activate()
    yield stubber
    stubber.deactivate()


def key_answers(
    stubber: Stubber,
    named: str,
    *,
    aliases: tuple[str, ...] = (),
    tags: dict[str, str] | None = None,
    **metadata: Any,
) -> None:
    """DescribeKey, ListAliases and ListResourceTags as KMS answers them (shapes checked by the
    Stubber against KMS's service model) for a customer-managed symmetric key."""
    key = {
        "AWSAccountId": ACCOUNT,
        "KeyId": KEY_ID,
        "Arn": KEY_ARN,
        "CreationDate": datetime(2024, 5, 6, 7, 8, tzinfo=UTC),
        "Enabled": True,
        "Description": "legacy MWAA data",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
        **metadata,
    }
    stubber.add_response("describe_key", {"KeyMetadata": key}, {"KeyId": named})
    stubber.add_response(
        "list_aliases",
        {
            "Aliases": [
                {
                    "AliasName": alias,
                    "AliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:{alias}",
                    "TargetKeyId": KEY_ID,
                }
                for alias in aliases
            ],
            "Truncated": False,
        },
        {"KeyId": KEY_ID},
    )
    stubber.add_response(
        "list_resource_tags",
        {
            "Tags": [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()],
            "Truncated": False,
        },
        {"KeyId": KEY_ID},
    )


def _answer(stubber: Stubber, found: dict[str, Any]) -> None:
    stubber.add_response("get_environment", {"Environment": found}, {"Name": found["Name"]})


def _import(*words: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, ["stage", "import", *words])
    return result.exit_code, result.output, result.exception


def test_the_fixture_has_every_member_of_mwaa_service_model(network: Network) -> None:
    """The round trip below covers every member GetEnvironment can return, and this module
    knows each of them (a member a newer botocore adds fails here until it is handled)."""
    adoptable = environment(network, name="mwaa-elt-legacy", version="2.11.0", access="PUBLIC_ONLY")
    assert set(adoptable) | REFUSED_WHEN_SET == model_members()
    assert model_members() == KNOWN_MEMBERS


@pytest.mark.parametrize("stage", sorted(CASES))
def test_an_imported_environment_loads_and_round_trips(
    stage: str, project: Path, network: Network, mwaa: Stubber
) -> None:
    name = f"mwaa-elt-{stage}"
    found = environment(network, name=name, **CASES[stage])
    _answer(mwaa, found)
    code, output, _ = _import("-e", name, "--region", REGION, "--as", stage, "--yes")
    assert code == 0, output
    mwaa.assert_no_pending_responses()

    loaded = load_stage(project / "stacks", stage)
    config = loaded.config
    assert loaded.region == REGION
    assert loaded.account_id == ACCOUNT
    assert loaded.environment_name == found["Name"]
    assert loaded.environment_arn == found["Arn"]
    assert loaded.source_bucket_arn == found["SourceBucketArn"]
    assert loaded.execution_role_arn == found["ExecutionRoleArn"]
    assert loaded.airflow.version == found["AirflowVersion"]
    assert config.environment_class == found["EnvironmentClass"]
    assert (config.min_workers, config.max_workers, config.schedulers) == (2, 6, 3)
    assert config.webserver_access_mode == found["WebserverAccessMode"]
    assert config.maintenance_window_start == found["WeeklyMaintenanceWindowStart"]
    assert config.log_levels.model_dump(by_alias=True) == {
        "dagProcessing": "WARNING",
        "scheduler": "INFO",
        "task": "INFO",
        "webserver": "ERROR",
        "worker": "WARNING",
    }
    assert config.airflow_configuration_options == found["AirflowConfigurationOptions"]
    assert config.network.existing is not None
    assert config.network.existing.vpc_id == network.vpc_id
    assert tuple(config.network.existing.private_subnet_ids) == network.subnets
    assert config.owner == "data-platform"
    assert loaded.tags == {
        "cost-center": "analytics",
        "owner": "data-platform",
        "stage": stage,
        "project": "mwaa-elt",
    }
    assert loaded.dags_prefix.rstrip("/") == found["DagS3Path"]
    assert loaded.paths.requirements == found["RequirementsS3Path"]
    assert loaded.paths.plugins == found["PluginsS3Path"]
    assert loaded.paths.startup_script == found["StartupScriptS3Path"]
    assert not config.encryption.customer_managed_key  # the environment has no KmsKey
    assert config.adopt is not None
    assert config.adopt.model_dump(by_alias=True) == {
        "environment": name,
        "bucket": f"airflow-{name}-{ACCOUNT}",
        "executionRole": f"{name}-mwaa-execution",
        "logGroups": ["DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"],
        "kmsKey": None,  # no customer-managed key
        "kmsKeyAlias": None,
    }
    assert set(loaded.log_groups.values()) == {
        module["CloudWatchLogGroupArn"].rsplit(":", 1)[-1]
        for module in found["LoggingConfiguration"].values()
    }


def test_the_summary_names_the_import_ids_and_every_coming_change(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    _answer(mwaa, environment(network, name="mwaa-elt-legacy", **CASES["legacy"]))
    code, output, _ = _import(
        "-e", "mwaa-elt-legacy", "--region", REGION, "--as", "legacy", "--json", "--yes"
    )
    assert code == 0, output
    report = json.loads(output)
    assert report["written"] and report["verified"] and report["refusals"] == []
    assert {change["setting"] for change in report["changes"]} == {
        "RequirementsS3Path",
        "PluginsS3Path",
        "StartupScriptS3Path",
        "NetworkConfiguration.SecurityGroupIds",
        "AirflowConfigurationOptions.secrets.backend",
        "AirflowConfigurationOptions.secrets.backend_kwargs",
    }
    assert (project / "stacks/Pulumi.legacy.yaml").read_text() == report["yaml"]


def test_dry_run_prints_the_stack_file_and_writes_nothing(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    _answer(mwaa, environment(network, name="mwaa-elt-green", **CASES["green"]))
    words = ["stage", "import", "-e", "mwaa-elt-green", "--region", REGION, "--as", "green"]
    result = runner.invoke(app, [*words, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert not (project / "stacks/Pulumi.green.yaml").exists()
    # stdout is the stack file alone (the summary goes to stderr), so `> file` keeps it.
    assert result.stdout.startswith("# Adopted from MWAA environment mwaa-elt-green")
    assert "adopted by pulumi up" in result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["config"]["mwaa-elt:airflowVersion"] == "3.0.6"
    assert document["config"]["mwaa-elt:adopt"]["environment"] == "mwaa-elt-green"


def test_an_existing_stack_file_is_untouched_without_force(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    path = project / "stacks/Pulumi.green.yaml"
    path.write_text("# someone's own stack file\n")
    code, output, error = _import(
        "-e", "mwaa-elt-green", "--region", REGION, "--as", "green", "--yes"
    )
    assert code == 1
    assert isinstance(error, ConfigError)
    assert "stacks/Pulumi.green.yaml: exists; pass --force" in str(error)
    assert path.read_text() == "# someone's own stack file\n"

    _answer(mwaa, environment(network, name="mwaa-elt-green", **CASES["green"]))
    code, output, _ = _import(
        "-e", "mwaa-elt-green", "--region", REGION, "--as", "green", "--yes", "--force"
    )
    assert code == 0, output
    assert load_stage(project / "stacks", "green").environment_name == "mwaa-elt-green"


def test_without_yes_and_no_terminal_nothing_is_written(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    _answer(mwaa, environment(network, name="mwaa-elt-green", **CASES["green"]))
    code, _, error = _import("-e", "mwaa-elt-green", "--region", REGION, "--as", "green")
    assert code == 1
    assert "pass --yes" in str(error)
    assert not (project / "stacks/Pulumi.green.yaml").exists()


def test_settings_the_platform_cannot_express_are_refused_by_name(
    project: Path, network: Network, mwaa: Stubber, kms: Stubber
) -> None:
    name = "mwaa-elt-legacy"
    # The key named by an alias: MWAA keeps that name, the program would pass the key's ARN.
    alias = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/legacy-airflow"
    found = environment(
        network,
        name=name,
        version="2.11.0",
        access="PUBLIC_AND_PRIVATE",
        KmsKey=alias,
        EndpointManagement="CUSTOMER",
        MinWebservers=3,
        MaxWebservers=5,
        DagS3Path="airflow/dags",
        PluginsS3Path="airflow/plugins.zip",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/service-role/{name}-mwaa-execution",
        IdentityCenterConfiguration={
            "StartUrl": "https://d-0123456789.awsapps.com/start",
            "IdentityStoreId": "d-0123456789",
        },
        Teams={
            "marketing": {
                "SourceBucketArn": f"arn:aws:s3:::airflow-{name}-{ACCOUNT}",
                "DagS3Path": "dags/marketing",
            }
        },
        AirflowConfigurationOptions={
            "core.default_task_retries": "2",
            "secrets.backend": "airflow.providers.hashicorp.secrets.vault.VaultBackend",
        },
        Tags={"owner": "data-platform", "aws:cloudformation:stack-name": "legacy-airflow"},
    )
    assert set(found) == model_members()  # every member of the model, all at once
    _answer(mwaa, found)
    key_answers(kms, alias, tags={"stage": "legacy"})
    code, output, _ = _import("-e", name, "--region", REGION, "--as", "legacy", "--json", "--yes")
    assert code == 1
    report = json.loads(output)
    assert not report["written"]
    assert {refusal["setting"] for refusal in report["refusals"]} == {
        "KmsKey",
        "WebserverAccessMode",
        "EndpointManagement",
        "MinWebservers",
        "MaxWebservers",
        "DagS3Path",
        "PluginsS3Path",
        "ExecutionRoleArn",
        "IdentityCenterConfiguration",
        "Teams",
        "AirflowConfigurationOptions.secrets.backend",
        "Tags.aws:cloudformation:stack-name",
    }
    for refusal in report["refusals"]:
        assert refusal["reason"], refusal
    (key,) = [r for r in report["refusals"] if r["setting"] == "KmsKey"]
    assert f"MWAA names the key as {alias}, not by its ARN {KEY_ARN}" in key["reason"]
    assert not (project / "stacks/Pulumi.legacy.yaml").exists()

    _answer(mwaa, found)
    key_answers(kms, alias, tags={"stage": "legacy"})
    code, output, error = _import("-e", name, "--region", REGION, "--as", "legacy", "--yes")
    assert code == 1
    assert isinstance(error, ConfigError)
    assert f"{name}: WebserverAccessMode: PUBLIC_AND_PRIVATE: webserverAccessMode supports " in (
        str(error)
    )
    assert "refused" in output


def test_names_the_stage_would_not_derive_are_refused(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    found = environment(
        network,
        name="mwaa-elt-legacy",
        **CASES["legacy"],
        SourceBucketArn="arn:aws:s3:::airflow-legacy-dags",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/AmazonMWAA-legacy-x1y2z3",
    )
    _answer(mwaa, found)
    code, output, _ = _import(
        "-e", "mwaa-elt-legacy", "--region", REGION, "--as", "legacy", "--json"
    )
    assert code == 1
    refused = {r["setting"]: r for r in json.loads(output)["refusals"]}
    assert set(refused) == {"SourceBucketArn", "ExecutionRoleArn"}
    assert (
        f"(arn:aws:s3:::airflow-mwaa-elt-legacy-{ACCOUNT})" in refused["SourceBucketArn"]["reason"]
    )


def test_an_environment_not_named_prefix_dash_stage_is_refused(network: Network) -> None:
    found = environment(network, name="LegacyAirflow", **CASES["legacy"])
    result = translate(found, {s: network.vpc_id for s in network.subnets}, _request("legacy"))
    assert [r.setting for r in result.refusals] == ["Name"]
    assert result.adopt is None


def test_the_platform_secrets_backend_is_neither_refused_nor_a_change(
    project: Path, network: Network
) -> None:
    plain = environment(network, name="mwaa-elt-legacy", **CASES["legacy"])
    first = plan_import(plain, _vpcs(network), _request("legacy"), project / "stacks")
    assert first.ok
    # The environment already reads the stage's Secrets Manager prefix, as the platform sets it.
    stage = load_stage(_written(first, project), "legacy")
    options = {**plain["AirflowConfigurationOptions"], **airflow_configuration_options(stage)}
    again = plan_import(
        {**plain, "AirflowConfigurationOptions": options},
        _vpcs(network),
        _request("legacy"),
        project / "stacks",
    )
    assert again.ok and again.verified
    assert not [c for c in again.changes if c.setting.startswith("AirflowConfigurationOptions")]
    assert again.document == first.document


def test_a_member_this_version_does_not_know_is_refused_by_name(network: Network) -> None:
    found = {
        **environment(network, name="mwaa-elt-legacy", **CASES["legacy"]),
        "ServerlessMode": "ON",
    }
    result = translate(found, _vpcs(network), _request("legacy"))
    assert [r.setting for r in result.refusals] == ["ServerlessMode"]


def test_subnets_in_no_known_vpc_are_refused(network: Network) -> None:
    found = environment(network, name="mwaa-elt-legacy", **CASES["legacy"])
    result = translate(found, {}, _request("legacy"))
    assert [r.setting for r in result.refusals] == ["NetworkConfiguration.SubnetIds"]


def test_a_stage_rule_the_environment_breaks_is_refused(project: Path, network: Network) -> None:
    """prod must encrypt with the stage's own key, which an adopted environment cannot get."""
    found = environment(network, name="mwaa-elt-prod", **CASES["legacy"])
    result = plan_import(found, _vpcs(network), _request("prod", "staging"), project / "stacks")
    assert not result.verified
    assert "mwaa-elt:encryption.customerManagedKey" in {r.setting for r in result.refusals}


def test_a_missing_environment_is_a_clear_error(
    project: Path, network: Network, mwaa: Stubber
) -> None:
    mwaa.add_client_error(
        "get_environment",
        service_error_code="ResourceNotFoundException",
        service_message="Environment nope-legacy not found",
        http_status_code=404,
        expected_params={"Name": "nope-legacy"},
    )
    code, _, error = _import("-e", "nope-legacy", "--region", REGION, "--as", "legacy", "--yes")
    assert code == 1
    assert str(error).startswith("--environment: no MWAA environment 'nope-legacy' in eu-west-1")


def _request(stage: str, promotes_from: str | None = None) -> ImportRequest:
    return ImportRequest(f"mwaa-elt-{stage}", REGION, stage, promotes_from=promotes_from)


def _vpcs(network: Network) -> dict[str, str]:
    return {subnet: network.vpc_id for subnet in network.subnets}


def _written(result: Any, project: Path) -> Path:
    stacks = project / "written"
    shutil.copytree(project / "stacks", stacks)
    (stacks / f"Pulumi.{result.request.stage}.yaml").write_text(result.text)
    return stacks


def test_each_refused_setting_is_named_once(project: Path, network: Network) -> None:
    found = environment(
        network,
        name="mwaa-elt-legacy",
        **CASES["legacy"],
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonMWAA-legacy",
    )
    result = plan_import(found, _vpcs(network), _request("legacy"), project / "stacks")
    assert [r.setting for r in result.refusals] == ["ExecutionRoleArn"]


def test_the_pulumi_program_adopts_what_the_import_wrote(project: Path, network: Network) -> None:
    """The written stack runs through the Pulumi program (under mocks): the environment it
    declares, with the import id, has the environment's own settings."""
    from mwaa_elt.infra.preview import preview_stage

    found = environment(network, name="mwaa-elt-green", **CASES["green"])
    result = plan_import(found, _vpcs(network), _request("green"), project / "stacks")
    stage = load_stage(_written(result, project), "green")
    resources = {r.name: r for r in preview_stage(stage, ROOT / "infra" / "environment")}
    declared = resources["airflow-environment"]
    assert declared.import_id == "mwaa-elt-green"
    settings = declared.settings
    assert settings["name"] == found["Name"]
    assert settings["airflowVersion"] == found["AirflowVersion"]
    assert settings["environmentClass"] == found["EnvironmentClass"]
    assert (settings["minWorkers"], settings["maxWorkers"], settings["schedulers"]) == (2, 6, 3)
    assert settings["webserverAccessMode"] == found["WebserverAccessMode"]
    assert settings["weeklyMaintenanceWindowStart"] == found["WeeklyMaintenanceWindowStart"]
    assert settings["dagS3Path"] == found["DagS3Path"]
    assert settings["networkConfiguration"]["subnetIds"] == list(network.subnets)
    assert resources["storage-source-bucket"].import_id == f"airflow-mwaa-elt-green-{ACCOUNT}"
    assert resources["execution-role-role"].import_id == "mwaa-elt-green-mwaa-execution"


def test_a_prod_environment_with_a_customer_managed_key_is_adopted_with_its_key(
    project: Path, network: Network, mwaa: Stubber, kms: Stubber
) -> None:
    """A production-like environment: private, its data under a customer-managed key. The stack
    expresses the key (encryption.customerManagedKey) and adopts it — and its alias, which has
    the stage's name — so a production stage can be imported."""
    name = "mwaa-elt-prod"
    found = environment(network, name=name, version="2.11.0", access="PRIVATE_ONLY", KmsKey=KEY_ARN)
    _answer(mwaa, found)
    key_answers(kms, KEY_ARN, aliases=("alias/legacy-airflow", "alias/mwaa-elt-prod"), tags={"stage": "prod"})  # fmt: skip
    words = ("-e", name, "--region", REGION, "--as", "prod", "--promotes-from", "staging")
    code, output, _ = _import(*words, "--json", "--dry-run")
    assert code == 0, output
    report = json.loads(output)
    assert report["ok"] and report["verified"], report["refusals"]
    assert report["adopt"]["kmsKey"] == KEY_ARN and report["adopt"]["kmsKeyAlias"] is True
    config = report["stack"]["config"]
    assert config["mwaa-elt:encryption"] == {"customerManagedKey": True}
    assert config["mwaa-elt:adopt"]["kmsKey"] == KEY_ARN
    changes = {c["setting"]: c["detail"] for c in report["changes"]}
    assert "its policy becomes the platform's" in changes["KmsKey"]
    assert changes["KmsKey aliases"] == "alias/legacy-airflow stay, unmanaged by the stack"
    assert "KmsKey alias" not in changes  # the stage's alias exists: imported, not created
    _answer(mwaa, found)
    key_answers(kms, KEY_ARN, aliases=("alias/mwaa-elt-prod",), tags={"stage": "prod"})
    code, output, _ = _import(*words, "--dry-run")
    assert code == 0, output
    assert re.search(rf"│ KMS key +│ {KEY_ID} +│", output)
    assert re.search(r"│ KMS alias +│ alias/mwaa-elt-prod +│", output)


def test_the_pulumi_program_adopts_the_key_the_environment_names(
    project: Path, network: Network
) -> None:
    """Under Pulumi's mocks: the key is imported by its id and the environment is given exactly
    the ARN MWAA names (so Pulumi neither recreates the key nor replaces the environment); a
    key without the stage's alias gets it created."""
    from mwaa_elt.infra.preview import preview_stage
    from mwaa_elt.lifecycle.adopt import KEY_IGNORED, LOG_GROUP_IGNORED
    from mwaa_elt.lifecycle.stage_import import KmsKeyFacts

    found = environment(network, name="mwaa-elt-vault", version="2.11.0", access="PRIVATE_ONLY", KmsKey=KEY_ARN)  # fmt: skip
    key = KmsKeyFacts(KEY_ARN, "CUSTOMER", "SYMMETRIC_DEFAULT", "Enabled", False, (), {"stage": "vault"})  # fmt: skip
    result = plan_import(found, _vpcs(network), _request("vault"), project / "stacks", key)
    assert result.ok and result.verified, result.refusals
    assert result.adopt is not None and result.adopt.kms_key == KEY_ARN
    assert "KmsKey alias" in {c.setting for c in result.changes}
    stage = load_stage(_written(result, project), "vault")
    resources = {r.name: r for r in preview_stage(stage, ROOT / "infra" / "environment")}
    declared = resources["encryption-key"]
    assert declared.import_id == KEY_ID and declared.retain_on_delete
    assert set(declared.ignore_changes) == set(KEY_IGNORED)
    assert resources["encryption-alias"].import_id is None  # created for the adopted key
    assert resources["encryption-alias"].settings["name"] == "alias/mwaa-elt-vault"
    assert resources["airflow-environment"].settings["kmsKey"] == KEY_ARN
    assert resources["airflow-environment"].import_id == "mwaa-elt-vault"
    assert "kmsKey" not in resources["airflow-environment"].ignore_changes
    assert set(resources["monitoring-logs-task"].ignore_changes) == set(LOG_GROUP_IGNORED)


@pytest.mark.parametrize(
    ("metadata", "tags", "said"),
    [
        ({"MultiRegion": True}, {"stage": "vault"}, "a multi-Region SYMMETRIC_DEFAULT key"),
        ({"KeyState": "PendingDeletion"}, {"stage": "vault"}, "the key is PendingDeletion"),
        ({}, {}, f"aws kms tag-resource --key-id {KEY_ARN} --tags TagKey=stage,TagValue=vault"),
        (
            {"Arn": KEY_ARN.replace(ACCOUNT, "999999999999")},
            {"stage": "vault"},
            "the key is in eu-west-1 of account 999999999999",
        ),
    ],
)
def test_a_key_the_program_cannot_declare_as_it_is_is_refused_by_name(
    network: Network, kms: Stubber, metadata: dict[str, Any], tags: dict[str, str], said: str
) -> None:
    from mwaa_elt.lifecycle.stage_import import read_key

    arn = metadata.get("Arn", KEY_ARN)
    found = environment(network, name="mwaa-elt-vault", version="2.11.0", access="PRIVATE_ONLY", KmsKey=arn)  # fmt: skip
    key_answers(kms, arn, tags=tags, **metadata)
    result = translate(found, _vpcs(network), _request("vault"), read_key(arn, REGION))
    (refusal,) = [r for r in result.refusals if r.setting == "KmsKey"]
    assert said in refusal.reason
    assert result.adopt is not None and result.adopt.kms_key is None
    assert result.document["config"]["mwaa-elt:encryption"] == {"customerManagedKey": False}
