"""The offline preview as data, a bring-your-own network, and `infra/__main__.py` itself."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks, set_mocks

from mwaa_elt.infra.network import EMR_MANAGED_TAG
from mwaa_elt.infra.preview import PlannedResource, preview_stage, run_preview
from mwaa_elt.stage import MWAA_INTERFACE_ENDPOINTS, load_stage

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_DIR = ROOT / "infra" / "environment"
VPC_ID = "vpc-0a1b2c3d4e5f60718"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]


def test_preview_is_repeatable_and_does_not_leak_between_stages() -> None:
    dev = preview_stage(load_stage(ROOT / "stacks", "dev"))
    prod = preview_stage(load_stage(ROOT / "stacks", "prod"))
    again = preview_stage(load_stage(ROOT / "stacks", "dev"))
    assert again == dev
    assert {r.name for r in prod} - {r.name for r in dev} >= {"encryption-key", "network-nat-b"}
    assert "encryption-key" not in {r.name for r in again}


def test_preview_lists_parents_before_children_with_unique_names() -> None:
    resources = preview_stage(load_stage(ROOT / "stacks", "staging"))
    names = [r.name for r in resources]
    assert len(names) == len(set(names))
    seen: set[str] = set()
    for resource in resources:
        assert resource.parent is None or resource.parent in seen, resource.name
        seen.add(resource.name)
    top = {r.name: r.type for r in resources if r.parent is None}
    assert top == {
        "aws": "pulumi:providers:aws",
        "airflow": "mwaa-elt:mwaa:Environment",
        "analytics": "mwaa-elt:analytics:Analytics",
        "emr": "mwaa-elt:emr:EmrRoles",
        "runtime": "mwaa-elt:runtime:RuntimeSettings",
        "environment-files": "mwaa-elt:mwaa:EnvironmentFiles",
        "execution-role": "mwaa-elt:iam:ExecutionRole",
        "monitoring": "mwaa-elt:monitoring:Monitoring",
        "network": "mwaa-elt:network:Network",
        "storage": "mwaa-elt:storage:Storage",
        "delivery": "mwaa-elt:delivery:Delivery",
    }


def test_planned_resource_is_plain_data() -> None:
    resources = preview_stage(load_stage(ROOT / "stacks", "dev"))
    bucket = next(r for r in resources if r.name == "storage-source-bucket")
    assert isinstance(bucket, PlannedResource)
    assert bucket.as_dict() == {
        "type": "aws:s3/bucket:Bucket",
        "name": "storage-source-bucket",
        "parent": "storage-source",
        "protected": False,
        "provider": "aws",
        "custom": True,
        "settings": {"bucket": "airflow-mwaa-elt-dev-111111111111", "forceDestroy": False},
        "import_id": None,
        "ignore_changes": (),
        "retain_on_delete": False,
    }


@pytest.fixture
def byo_network_stage(scratch_project: Path):
    """The dev stage moved into an existing VPC, with private endpoints."""
    path = scratch_project / "stacks" / "Pulumi.dev.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["config"]["mwaa-elt:network"] = {
        "existing": {"vpcId": VPC_ID, "privateSubnetIds": SUBNETS},
        "privateEndpoints": True,
    }
    path.write_text(yaml.safe_dump(raw))
    return load_stage(scratch_project / "stacks", "dev")


def test_bring_your_own_network_creates_no_vpc_and_uses_the_given_subnets(byo_network_stage):
    preview = run_preview(byo_network_stage, ENVIRONMENT_DIR)
    types = {r.type for r in preview.resources}
    for created in ("Vpc", "Subnet", "NatGateway", "InternetGateway", "Eip", "RouteTable"):
        assert not any(t.endswith(f":{created}") for t in types), created
    group = next(r for r in preview.resources if r.type == "aws:ec2/securityGroup:SecurityGroup")
    assert group.settings["vpcId"] == VPC_ID
    environment = next(r for r in preview.resources if r.type == "aws:mwaa/environment:Environment")
    assert environment.settings["networkConfiguration"]["subnetIds"] == SUBNETS
    (key, value), *_ = EMR_MANAGED_TAG.items()
    tags = sorted(
        (r.settings["resourceId"], r.settings["key"], r.settings["value"])
        for r in preview.resources
        if r.type == "aws:ec2/tag:Tag"
    )
    assert tags == sorted((subnet, key, value) for subnet in SUBNETS)
    endpoints = [
        r.settings for r in preview.resources if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"
    ]
    assert len(endpoints) == len(MWAA_INTERFACE_ENDPOINTS) + 1
    (gateway,) = [e for e in endpoints if e["vpcEndpointType"] == "Gateway"]
    # The route tables come from a lookup of the subnets' associations, in the stage's account.
    assert len(gateway["routeTableIds"]) == 2
    assert preview.invokes == [("aws:ec2/getRouteTables:getRouteTables", "aws")]


class _Mocks(Mocks):
    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", {**args.inputs, "arn": f"arn:aws:mock:::{args.name}"}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


def _run_main(stack: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    settings.ROOT.set(None)
    set_mocks(_Mocks(), project="mwaa-elt", stack=stack, preview=True)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")

    program()
    return exported


def test_main_exports_every_output_of_the_stack_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    exported = _run_main("prod", monkeypatch)
    assert set(exported) == set(run_preview(load_stage(ROOT / "stacks", "prod")).outputs)


def test_main_fails_fast_with_the_stage_model_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(pulumi.RunError, match=r"Pulumi\.qa\.yaml: no such stack file"):
        _run_main("qa", monkeypatch)
