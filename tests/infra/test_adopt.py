"""The `adopt:` stack setting under Pulumi's mocks: `import_` on exactly the adopted resources."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.preview import PlannedResource, preview_stage
from mwaa_elt.lifecycle.adopt import (
    BUCKET_IGNORED,
    ENVIRONMENT_IGNORED,
    LOG_GROUP_IGNORED,
    ROLE_IGNORED,
)
from mwaa_elt.stage import load_stage

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "infra" / "environment"
ENVIRONMENT = "aws:mwaa/environment:Environment"
BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _adopting(project: Path, stage: str, adopt: dict[str, object]) -> Path:
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["config"]["mwaa-elt:adopt"] = adopt
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return project / "stacks"


def _by_name(resources: list[PlannedResource]) -> dict[str, PlannedResource]:
    return {resource.name: resource for resource in resources}


def test_adopt_sets_import_on_exactly_the_environment_bucket_role_and_named_log_groups(
    scratch_project: Path,
) -> None:
    stacks = _adopting(
        scratch_project,
        "dev",
        {
            "environment": "mwaa-elt-dev",
            "bucket": "airflow-mwaa-elt-dev-111111111111",
            "executionRole": "mwaa-elt-dev-mwaa-execution",
            "logGroups": ["Scheduler", "Task"],
        },
    )
    resources = _by_name(preview_stage(load_stage(stacks, "dev"), FILES))
    imported = {name: r for name, r in resources.items() if r.import_id is not None}
    assert {name: (r.type, r.import_id) for name, r in imported.items()} == {
        "airflow-environment": (ENVIRONMENT, "mwaa-elt-dev"),
        "storage-source-bucket": (BUCKET, "airflow-mwaa-elt-dev-111111111111"),
        "execution-role-role": (ROLE, "mwaa-elt-dev-mwaa-execution"),
        "monitoring-logs-scheduler": (LOG_GROUP, "airflow-mwaa-elt-dev-Scheduler"),
        "monitoring-logs-task": (LOG_GROUP, "airflow-mwaa-elt-dev-Task"),
    }
    ignored = {
        ENVIRONMENT: ENVIRONMENT_IGNORED,
        BUCKET: BUCKET_IGNORED,
        ROLE: ROLE_IGNORED,
        LOG_GROUP: LOG_GROUP_IGNORED,
    }
    for resource in imported.values():
        assert resource.ignore_changes == ignored[resource.type], resource.name
        assert resource.retain_on_delete, resource.name
    # The data-lake bucket, the other log groups and every other resource are still created.
    for name, resource in resources.items():
        if name not in imported:
            assert (resource.ignore_changes, resource.retain_on_delete) == ((), False), name
    assert resources["storage-data-lake-bucket"].import_id is None
    assert resources["monitoring-logs-worker"].import_id is None


def test_the_adopted_environment_is_declared_with_the_stage_settings(
    scratch_project: Path,
) -> None:
    stacks = _adopting(
        scratch_project,
        "dev",
        {
            "environment": "mwaa-elt-dev",
            "bucket": "airflow-mwaa-elt-dev-111111111111",
            "executionRole": "mwaa-elt-dev-mwaa-execution",
        },
    )
    adopted = _by_name(preview_stage(load_stage(stacks, "dev"), FILES))
    plain = _by_name(preview_stage(load_stage(ROOT / "stacks", "dev"), FILES))
    # Adoption changes how the program manages the resources, not what it declares.
    assert {n: r.settings for n, r in adopted.items()} == {n: r.settings for n, r in plain.items()}


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_a_stack_without_adopt_imports_nothing(stage: str) -> None:
    for resource in preview_stage(load_stage(ROOT / "stacks", stage)):
        assert resource.import_id is None, resource.name
        assert resource.ignore_changes == (), resource.name
        assert not resource.retain_on_delete, resource.name


def test_adopt_naming_another_resource_than_the_stage_declares_is_refused(
    scratch_project: Path,
) -> None:
    stacks = _adopting(
        scratch_project,
        "dev",
        {
            "environment": "legacy-airflow",
            "bucket": "airflow-mwaa-elt-dev-111111111111",
            "executionRole": "AmazonMWAA-legacy-airflow-x1y2z3",
        },
    )
    with pytest.raises(ConfigError) as refused:
        preview_stage(load_stage(stacks, "dev"), FILES)
    assert refused.value.messages == [
        "Pulumi.dev.yaml: mwaa-elt:adopt.environment: 'legacy-airflow' is not the stage's "
        "environment 'mwaa-elt-dev'; the program declares 'mwaa-elt-dev', so it can adopt only "
        "a resource of that name",
        "Pulumi.dev.yaml: mwaa-elt:adopt.executionRole: 'AmazonMWAA-legacy-airflow-x1y2z3' is "
        "not the stage's executionRole 'mwaa-elt-dev-mwaa-execution'; the program declares "
        "'mwaa-elt-dev-mwaa-execution', so it can adopt only a resource of that name",
    ]


def test_an_unknown_adopt_key_is_refused_by_the_loader(scratch_project: Path) -> None:
    stacks = _adopting(
        scratch_project,
        "dev",
        {
            "environment": "mwaa-elt-dev",
            "bucket": "airflow-mwaa-elt-dev-111111111111",
            "executionRole": "mwaa-elt-dev-mwaa-execution",
            "securityGroup": "sg-0a1b2c3d4e5f60718",
            "kmsKey": "alias/legacy",
        },
    )
    with pytest.raises(ConfigError) as refused:
        load_stage(stacks, "dev")
    messages = refused.value.messages
    assert any("mwaa-elt:adopt.securityGroup: unknown key" in m for m in messages)
    # A key is adopted by its ARN (the form the environment must name it in), not by alias.
    assert any(m.split(": ", 1)[1].startswith("mwaa-elt:adopt.kmsKey: ") for m in messages)


def test_an_adopted_key_needs_the_stage_to_declare_one_in_its_own_account(
    scratch_project: Path,
) -> None:
    key = "arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    adopt = {
        "environment": "mwaa-elt-dev",
        "bucket": "airflow-mwaa-elt-dev-111111111111",
        "executionRole": "mwaa-elt-dev-mwaa-execution",
        "kmsKey": key,
    }
    stacks = _adopting(scratch_project, "dev", adopt)
    with pytest.raises(ConfigError) as refused:
        preview_stage(load_stage(stacks, "dev"), FILES)  # dev has no customer-managed key
    assert refused.value.messages == [
        "Pulumi.dev.yaml: mwaa-elt:adopt.kmsKey: set, but encryption.customerManagedKey is "
        "false, so the program declares no key to adopt it as; set "
        "encryption.customerManagedKey: true"
    ]
    path = stacks / "Pulumi.dev.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["config"]["mwaa-elt:encryption"] = {"customerManagedKey": True}
    raw["config"]["mwaa-elt:adopt"]["kmsKey"] = key.replace("111111111111", "999999999999")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=r"is in eu-west-1 of account 999999999999; the stage's"):
        preview_stage(load_stage(stacks, "dev"), FILES)
    raw["config"]["mwaa-elt:adopt"]["kmsKey"] = key
    raw["config"]["mwaa-elt:adopt"]["kmsKeyAlias"] = True
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    resources = _by_name(preview_stage(load_stage(stacks, "dev"), FILES))
    assert resources["encryption-key"].import_id == "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert resources["encryption-alias"].import_id == "alias/mwaa-elt-dev"
    assert resources["airflow-environment"].settings["kmsKey"] == key
