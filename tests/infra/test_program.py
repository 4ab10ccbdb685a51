"""Each stage's Pulumi program under mocks: the settings each stack file asks for, deployed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mwaa_elt.infra.documents.environment_files import (
    build_plugins_zip,
    build_requirements,
    read_startup_script,
)
from mwaa_elt.infra.documents.iam_policies import (
    EMR_SERVICE_MANAGED_POLICY,
    emr_instance_role_policies,
    execution_role_policies,
    stage_roles,
)
from mwaa_elt.infra.documents.release_pipeline import artifact_bucket_name
from mwaa_elt.infra.encryption import key_policy
from mwaa_elt.infra.environment import SECRETS_BACKEND
from mwaa_elt.infra.network import EMR_MANAGED_TAG
from mwaa_elt.infra.preview import PlannedResource, Preview, run_preview
from mwaa_elt.stage import (
    MWAA_INTERFACE_ENDPOINTS,
    MWAA_LOG_TYPES,
    Stage,
    load_all_stages,
    load_stage,
)

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "staging", "prod")
GiB = 1024**3

BUCKET = "aws:s3/bucket:Bucket"
ENVIRONMENT = "aws:mwaa/environment:Environment"
KMS_KEY = "aws:kms/key:Key"
NAT = "aws:ec2/natGateway:NatGateway"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
WORKGROUP = "aws:athena/workgroup:Workgroup"
PROVIDER = "pulumi:providers:aws"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

# What each stack file asks for, spelled out: a test fails when a stage's setting changes.
EXPECTED: dict[str, dict[str, Any]] = {
    "dev": {
        "nat_gateways": 1,
        "access_mode": "PUBLIC_ONLY",
        "cmk": False,
        "endpoints": False,
        "cutoff": 1 * GiB,
        "log_levels": {
            "dagProcessingLogs": "INFO",
            "schedulerLogs": "INFO",
            "taskLogs": "DEBUG",
            "webserverLogs": "INFO",
            "workerLogs": "INFO",
        },
        "noncurrent_days": 14,
        "workers": (1, 2, 2),
        "maintenance": "SUN:03:00",
    },
    "staging": {
        "nat_gateways": 1,
        "access_mode": "PRIVATE_ONLY",
        "cmk": False,
        "endpoints": True,
        "cutoff": 10 * GiB,
        "log_levels": {
            "dagProcessingLogs": "WARNING",
            "schedulerLogs": "INFO",
            "taskLogs": "INFO",
            "webserverLogs": "WARNING",
            "workerLogs": "INFO",
        },
        "noncurrent_days": 60,
        "workers": (1, 5, 2),
        "maintenance": "SAT:02:00",
    },
    "prod": {
        "nat_gateways": 2,
        "access_mode": "PRIVATE_ONLY",
        "cmk": True,
        "endpoints": True,
        "cutoff": 100 * GiB,
        "log_levels": {
            "dagProcessingLogs": "WARNING",
            "schedulerLogs": "WARNING",
            "taskLogs": "INFO",
            "webserverLogs": "ERROR",
            "workerLogs": "WARNING",
        },
        "noncurrent_days": 365,
        "workers": (2, 10, 3),
        "maintenance": "SUN:02:30",
    },
}


@cache
def _preview(stage_name: str) -> Preview:
    # A preview is pure data that no test mutates: one run per stage and test process.
    return run_preview(_stage(stage_name))


@cache
def _stage(stage_name: str) -> Stage:
    return load_stage(ROOT / "stacks", stage_name)


def _of_type(preview: Preview, type_: str) -> list[PlannedResource]:
    return [r for r in preview.resources if r.type == type_]


def _one(preview: Preview, type_: str) -> PlannedResource:
    (resource,) = _of_type(preview, type_)
    return resource


def _named(preview: Preview, name: str) -> PlannedResource:
    (resource,) = [r for r in preview.resources if r.name == name]
    return resource


def _bucket_parts(preview: Preview, bucket: str) -> dict[str, dict[str, Any]]:
    """The settings of every resource attached to `bucket`, by type name (Versioning, Policy...)."""
    return {
        r.type.rsplit(":", 1)[1]: r.settings
        for r in preview.resources
        if r.settings.get("bucket") == bucket and r.type.startswith("aws:s3/bucket")
    }


# -- provider and tags ---------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_provider_is_pinned_to_the_stage_account_region_and_tags(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    provider = _one(preview, PROVIDER)
    assert provider.settings["region"] == stage.region
    assert provider.settings["allowedAccountIds"] == [stage.account_id]
    tags = provider.settings["defaultTags"]["tags"]
    assert tags == stage.tags
    assert {tags["stage"], tags["project"], tags["owner"]} == {name, "mwaa-elt", "data-platform"}
    assert tags["cost-center"] == f"data-{name}"


@pytest.mark.parametrize("name", STAGES)
def test_every_resource_is_managed_by_the_stage_provider(name: str) -> None:
    preview = _preview(name)
    # Exactly one provider: no resource fell back to a default provider with ambient settings.
    assert [r.name for r in preview.resources if r.type.startswith("pulumi:providers:")] == ["aws"]
    custom = [r for r in preview.resources if r.custom and r.type != PROVIDER]
    assert custom
    assert {r.name: r.provider for r in custom} == {r.name: "aws" for r in custom}


# -- network -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_nat_gateways_per_stage(name: str) -> None:
    preview = _preview(name)
    nats = _of_type(preview, NAT)
    assert len(nats) == EXPECTED[name]["nat_gateways"]
    assert len(_of_type(preview, "aws:ec2/eip:Eip")) == len(nats)
    nat_ids = {preview.states[n.name]["id"] for n in nats}
    private_defaults = [
        r.settings["natGatewayId"]
        for r in _of_type(preview, "aws:ec2/route:Route")
        if "natGatewayId" in r.settings
    ]
    # Both zones route out; with two NATs each zone has its own, so losing one zone is survivable.
    assert len(private_defaults) == 2
    assert set(private_defaults) == nat_ids


@pytest.mark.parametrize("name", STAGES)
def test_vpc_has_two_private_subnets_in_two_zones_tagged_for_emr(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    assert _one(preview, "aws:ec2/vpc:Vpc").settings["cidrBlock"] == stage.config.network.vpc_cidr
    private = [r for r in _of_type(preview, "aws:ec2/subnet:Subnet") if "-private-" in r.name]
    assert sorted(r.settings["availabilityZone"] for r in private) == [
        f"{stage.region}a",
        f"{stage.region}b",
    ]
    for subnet in private:
        assert EMR_MANAGED_TAG.items() <= subnet.settings["tags"].items()
    group = _one(preview, "aws:ec2/securityGroup:SecurityGroup").settings
    assert EMR_MANAGED_TAG.items() <= group["tags"].items()
    assert group["name"] == stage.security_group_name
    assert group["ingress"] == [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]
    environment = _one(preview, ENVIRONMENT).settings["networkConfiguration"]
    assert environment["subnetIds"] == [preview.states[r.name]["id"] for r in private]
    assert environment["securityGroupIds"] == [preview.states["network-security-group"]["id"]]


@pytest.mark.parametrize("name", STAGES)
def test_private_endpoints_per_stage(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    endpoints = _of_type(preview, ENDPOINT)
    if not EXPECTED[name]["endpoints"]:
        assert endpoints == []
        return
    interface = [r.settings for r in endpoints if r.settings["vpcEndpointType"] == "Interface"]
    assert sorted(e["serviceName"] for e in interface) == sorted(
        f"com.amazonaws.{stage.region}.{service}" for service in MWAA_INTERFACE_ENDPOINTS
    )
    network = _one(preview, ENVIRONMENT).settings["networkConfiguration"]
    for endpoint in interface:
        assert endpoint["privateDnsEnabled"] is True
        assert endpoint["subnetIds"] == network["subnetIds"]
        assert endpoint["securityGroupIds"] == network["securityGroupIds"]
    (gateway,) = [r.settings for r in endpoints if r.settings["vpcEndpointType"] == "Gateway"]
    assert gateway["serviceName"] == f"com.amazonaws.{stage.region}.s3"
    private_tables = [preview.states[f"network-private-{z}-routes"]["id"] for z in ("a", "b")]
    assert gateway["routeTableIds"] == private_tables


# -- encryption and protection -------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_customer_managed_key_is_used_everywhere_when_the_stage_has_one(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    encryption = [
        _bucket_parts(preview, bucket)["BucketServerSideEncryptionConfiguration"]["rules"][0]
        for bucket in (stage.source_bucket, stage.data_lake_bucket)
    ]
    workgroup = _one(preview, WORKGROUP).settings["configuration"]["resultConfiguration"]
    environment = _one(preview, ENVIRONMENT).settings
    if not EXPECTED[name]["cmk"]:
        assert _of_type(preview, KMS_KEY) == []
        assert "kms_key_arn" not in preview.outputs
        for rule in encryption:
            assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
        assert workgroup["encryptionConfiguration"] == {"encryptionOption": "SSE_S3"}
        assert "kmsKey" not in environment
        return
    key = _one(preview, KMS_KEY)
    assert key.settings["enableKeyRotation"] is True
    assert key.settings["deletionWindowInDays"] == 30
    assert json.loads(key.settings["policy"]) == key_policy(stage)
    alias = _one(preview, "aws:kms/alias:Alias").settings
    assert alias == {"name": stage.kms_key_alias, "targetKeyId": preview.states[key.name]["id"]}
    key_arn = preview.outputs["kms_key_arn"]
    assert key_arn == preview.states[key.name]["arn"]
    for rule in encryption:
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": key_arn,
        }
        assert rule["bucketKeyEnabled"] is True
    assert workgroup["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS",
        "kmsKeyArn": key_arn,
    }
    assert environment["kmsKey"] == key_arn


def test_key_policy_lets_cloudwatch_logs_encrypt_only_the_environment_log_groups() -> None:
    stage = _stage("prod")
    admin, logs, alarms = key_policy(stage)["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
    # The alert topics are encrypted with the key: CloudWatch alarms of the account may use it.
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": "333333333333"}}
    assert logs["Principal"] == {"Service": "logs.eu-central-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": (
                "arn:aws:logs:eu-central-1:333333333333:log-group:airflow-mwaa-elt-prod-*"
            )
        }
    }


@pytest.mark.parametrize("name", STAGES)
def test_production_protects_buckets_key_and_environment(name: str) -> None:
    preview = _preview(name)
    protected = {(r.type, r.name) for r in preview.resources if r.protected}
    if name != "prod":
        assert protected == set()
        return
    assert protected == {
        (BUCKET, "storage-data-lake-bucket"),
        (BUCKET, "storage-source-bucket"),
        (KMS_KEY, "encryption-key"),
        (ENVIRONMENT, "airflow-environment"),
        (BUCKET, "delivery-artifacts-bucket"),  # prod hosts the release pipeline
        *((LOG_GROUP, f"monitoring-logs-{kind.lower()}") for kind in MWAA_LOG_TYPES),
    }


# -- storage -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_buckets_are_versioned_private_tls_only_and_expire_old_versions(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    buckets = sorted(r.settings["bucket"] for r in _of_type(preview, BUCKET))
    release = [artifact_bucket_name(stage)] if stage.config.delivery.pipeline else []
    assert buckets == sorted([stage.source_bucket, stage.data_lake_bucket, *release])
    for bucket in buckets:
        parts = _bucket_parts(preview, bucket)
        assert parts["Bucket"] == {"bucket": bucket, "forceDestroy": False}
        assert parts["BucketVersioning"]["versioningConfiguration"] == {"status": "Enabled"}
        block = parts["BucketPublicAccessBlock"]
        assert all(
            block[key] is True
            for key in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        assert parts["BucketOwnershipControls"]["rule"] == {
            "objectOwnership": "BucketOwnerEnforced"
        }
        (rule,) = parts["BucketLifecycleConfiguration"]["rules"]
        assert rule["status"] == "Enabled"
        days = (
            stage.config.delivery.pipeline.artifact_expiration_days
            if bucket in release
            else EXPECTED[name]["noncurrent_days"]
        )
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": days}
        (deny,) = json.loads(parts["BucketPolicy"]["policy"])["Statement"]
        arn = f"arn:aws:s3:::{bucket}"
        assert deny["Effect"] == "Deny"
        assert deny["Principal"] == "*"
        assert deny["Resource"] == [arn, f"{arn}/*"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- analytics -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_athena_workgroup_enforces_the_stage_cutoff_and_results_location(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    workgroup = _one(preview, WORKGROUP).settings
    assert workgroup["name"] == stage.athena_workgroup
    assert workgroup["forceDestroy"] is False
    configuration = workgroup["configuration"]
    assert configuration["bytesScannedCutoffPerQuery"] == EXPECTED[name]["cutoff"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    assert configuration["publishCloudwatchMetricsEnabled"] is True
    assert configuration["engineVersion"] == {"selectedEngineVersion": "Athena engine version 3"}
    results = configuration["resultConfiguration"]["outputLocation"]
    assert results == f"s3://airflow-mwaa-elt-{name}-{stage.account_id}/athena-results/"


@pytest.mark.parametrize("name", STAGES)
def test_glue_databases_carry_the_stage_prefix_and_live_in_its_lake_prefix(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    databases = {
        r.settings["name"]: r.settings["locationUri"]
        for r in _of_type(preview, "aws:glue/catalogDatabase:CatalogDatabase")
    }
    lake = stage.data_lake_bucket
    assert databases == {
        f"{name}_{logical}": f"s3://{lake}/{name}/{logical}/"
        for logical in ("movielens", "analytics", "ops")
    }
    assert preview.outputs["glue_databases"] == {
        logical: f"{name}_{logical}" for logical in ("movielens", "analytics", "ops")
    }


# -- IAM -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_roles_carry_exactly_the_documents_of_iam_policies(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    inline = {
        (r.parent, r.settings["name"]): json.loads(r.settings["policy"])
        for r in _of_type(preview, "aws:iam/rolePolicy:RolePolicy")
    }
    expected = {("execution-role", p.name): p.document for p in execution_role_policies(stage)}
    expected |= {("emr", p.name): p.document for p in emr_instance_role_policies(stage)}
    delivery = stage_roles(stage, load_all_stages(ROOT / "stacks"))[2:]
    expected |= {("delivery", p.name): p.document for role in delivery for p in role.policies}
    assert inline == expected
    roles = {r.settings["name"] for r in _of_type(preview, "aws:iam/role:Role")}
    assert roles == {
        stage.execution_role_name,
        stage.emr_service_role,
        stage.emr_instance_role,
        *(role.name for role in delivery),
    }
    attachment = _one(preview, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").settings
    assert attachment == {
        "policyArn": f"arn:aws:iam::aws:policy/{EMR_SERVICE_MANAGED_POLICY}",
        "role": stage.emr_service_role,
    }
    profile = _one(preview, "aws:iam/instanceProfile:InstanceProfile").settings
    assert profile == {"name": stage.emr_instance_profile, "role": stage.emr_instance_role}


# -- the environment -----------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_environment_settings_per_stage(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    environment = _one(preview, ENVIRONMENT).settings
    min_workers, max_workers, schedulers = EXPECTED[name]["workers"]
    assert environment["name"] == f"mwaa-elt-{name}"
    assert environment["airflowVersion"] == stage.config.airflow_version
    assert environment["environmentClass"] == stage.config.environment_class
    assert (environment["minWorkers"], environment["maxWorkers"]) == (min_workers, max_workers)
    assert environment["schedulers"] == schedulers
    assert environment["webserverAccessMode"] == EXPECTED[name]["access_mode"]
    assert environment["weeklyMaintenanceWindowStart"] == EXPECTED[name]["maintenance"]
    assert environment["dagS3Path"] == "dags"
    assert environment["sourceBucketArn"] == stage.source_bucket_arn
    assert environment["executionRoleArn"] == preview.outputs["execution_role_arn"]
    assert environment["executionRoleArn"] == stage.execution_role_arn
    assert environment["tags"] == stage.tags


@pytest.mark.parametrize("name", STAGES)
def test_environment_logs_everything_at_the_stage_levels(name: str) -> None:
    logging = _one(_preview(name), ENVIRONMENT).settings["loggingConfiguration"]
    assert {kind: value["logLevel"] for kind, value in logging.items()} == EXPECTED[name][
        "log_levels"
    ]
    assert all(value["enabled"] is True for value in logging.values())


@pytest.mark.parametrize("name", STAGES)
def test_environment_reads_secrets_from_the_stage_prefix(name: str) -> None:
    stage = _stage(name)
    options = _one(_preview(name), ENVIRONMENT).settings["airflowConfigurationOptions"]
    assert options["secrets.backend"] == SECRETS_BACKEND
    assert json.loads(options["secrets.backend_kwargs"]) == {
        "connections_prefix": f"mwaa-elt/{name}/connections",
        "variables_prefix": f"mwaa-elt/{name}/variables",
    }
    own = {k: v for k, v in options.items() if not k.startswith("secrets.")}
    assert own == stage.config.airflow_configuration_options


@pytest.mark.parametrize("name", STAGES)
def test_environment_pins_the_versions_of_its_uploaded_files(name: str) -> None:
    stage, preview = _stage(name), _preview(name)
    environment = _one(preview, ENVIRONMENT).settings
    source = ROOT / "infra" / "environment"
    files = {
        "requirements": (
            "environment-files-requirements",
            build_requirements(stage, source / "requirements.txt"),
        ),
        "plugins": ("environment-files-plugins", build_plugins_zip(source / "plugins")),
        "startupScript": (
            "environment-files-startup-script",
            read_startup_script(source / "startup.sh"),
        ),
    }
    versions = set()
    for field, (resource, content) in files.items():
        uploaded = _named(preview, resource).settings
        assert uploaded["bucket"] == stage.source_bucket
        assert environment[f"{field}S3Path"] == uploaded["key"]
        assert environment[f"{field}S3ObjectVersion"] == preview.states[resource]["versionId"]
        assert uploaded["contentBytes"] == len(content)
        versions.add(environment[f"{field}S3ObjectVersion"])
    assert len(versions) == 3


@pytest.mark.parametrize("name", STAGES)
def test_stack_outputs_name_the_stage_resources(name: str) -> None:
    stage, outputs = _stage(name), _preview(name).outputs
    expected = {
        "alarms",
        "alert_topics",
        "athena_workgroup",
        "dashboard",
        "data_lake_bucket",
        "emr_instance_profile",
        "emr_service_role",
        "environment_arn",
        "environment_name",
        "execution_role_arn",
        "glue_databases",
        "log_groups",
        "source_bucket",
        "webserver_url",
    } | ({"kms_key_arn"} if EXPECTED[name]["cmk"] else set())
    expected |= {"ci_roles"} | ({"release_pipeline"} if name == "prod" else set())
    assert set(outputs) == expected
    assert outputs["environment_name"] == stage.environment_name
    assert outputs["environment_arn"] == stage.environment_arn
    assert outputs["source_bucket"] == stage.source_bucket
    assert outputs["data_lake_bucket"] == stage.data_lake_bucket
    assert outputs["emr_service_role"] == stage.emr_service_role
    assert outputs["emr_instance_profile"] == stage.emr_instance_profile
    assert outputs["athena_workgroup"] == stage.athena_workgroup
    assert outputs["webserver_url"]
    assert set(outputs["alert_topics"]) == {"data-alerts"}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_runtime_settings_give_dags_their_alert_topics_and_emr_subnet(name: str) -> None:
    stage = _stage(name)
    resources = {r.name: r for r in _preview(name).resources}
    topic = resources["runtime-topic-data-alerts"]
    assert topic.settings["name"] == f"mwaa-elt-{name}-data-alerts"
    secret = resources["runtime-emr-subnet"]
    assert secret.settings["name"] == f"mwaa-elt/{name}/variables/emr_subnet_id"
    assert ("kmsKeyId" in secret.settings) == (name == "prod")
    assert resources["runtime-emr-subnet-value"].settings["secretString"].startswith("subnet-")
    alerts = {p.name: p.document for p in execution_role_policies(stage)}["alerts"]
    assert alerts["Statement"][0]["Resource"] == [stage.sns_topic_arn("data-alerts")]


@pytest.mark.parametrize("name", STAGES)
def test_airflow_2_stages_name_their_bucket_to_mwaa_dr_through_secrets_manager(name: str) -> None:
    stage = _stage(name)
    resources = {r.name: r for r in _preview(name).resources}
    if stage.airflow.major != 2:  # no mwaa-dr on Airflow 3: no variable for it
        assert "runtime-dr-backup-bucket" not in resources
        return
    secret = resources["runtime-dr-backup-bucket"]
    assert secret.settings["name"] == f"mwaa-elt/{name}/variables/DR_BACKUP_BUCKET"
    assert ("kmsKeyId" in secret.settings) == (name == "prod")
    value = resources["runtime-dr-backup-bucket-value"].settings["secretString"]
    assert value == stage.source_bucket
