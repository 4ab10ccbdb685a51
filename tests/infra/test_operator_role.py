"""The operator role under Pulumi's mocks: declared from a stack's `operator:` block with the
documents `mwaa-elt infra policies` prints, an output with its ARN, and every guardrail holding;
no role without the block; principals of another account refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents.guardrails import iam_wildcard_violations
from mwaa_elt.infra.documents.iam_policies import operator_role
from mwaa_elt.infra.preview import run_preview
from mwaa_elt.stage import load_stage

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_DIR = ROOT / "infra" / "environment"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _stacks(tmp_path: Path, name: str, block: str) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
        (stacks / path.name).write_text(path.read_text())
    path = stacks / f"Pulumi.{name}.yaml"
    path.write_text(path.read_text() + block)
    return stacks


@pytest.mark.parametrize(("name", "account"), [("staging", "222222222222"), ("prod", "333333333333")])  # fmt: skip
def test_an_operator_block_declares_the_role_with_its_documents(tmp_path, name, account):
    block = (
        f"  mwaa-elt:operator:\n    principals: [arn:aws:iam::{account}:role/platform-engineers]\n"
    )
    stage = load_stage(_stacks(tmp_path, name, block), name)
    documents = operator_role(stage)
    assert documents is not None and documents.name == f"mwaa-elt-{name}-operator"
    preview = run_preview(stage, ENVIRONMENT_DIR)
    (role,) = [r for r in preview.resources if r.type == ROLE and r.name == "operator-role"]
    assert role.settings["name"] == documents.name
    assert json.loads(role.settings["assumeRolePolicy"]) == documents.trust
    policies = {
        r.settings["name"]: json.loads(r.settings["policy"])
        for r in preview.resources
        if r.type == ROLE_POLICY and r.name.startswith("operator-role-")
    }
    assert policies == {p.name: p.document for p in documents.policies}
    assert set(policies) == {"operate", "promote"}
    assert preview.outputs["operator_role_arn"]
    for resource in preview.resources:
        assert iam_wildcard_violations(resource.type, resource.settings) == []
    trust = documents.trust["Statement"][0]
    assert trust["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}


def test_without_the_block_no_operator_role_is_declared():
    stage = load_stage(ROOT / "stacks", "staging")
    assert operator_role(stage) is None
    preview = run_preview(stage, ENVIRONMENT_DIR)
    assert not any(r.name.startswith("operator") for r in preview.resources)
    assert "operator_role_arn" not in preview.outputs


def test_a_principal_of_another_account_is_refused_by_name(tmp_path):
    block = (
        "  mwaa-elt:operator:\n"
        "    principals: [arn:aws:iam::999999999999:role/platform-engineers]\n"
        "    requireMfa: false\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_stage(_stacks(tmp_path, "staging", block), "staging")
    (message,) = refused.value.messages
    assert "mwaa-elt:operator: " in message
    assert "'arn:aws:iam::999999999999:role/platform-engineers' is in account 999999999999, not the stage's (222222222222)" in message  # fmt: skip
    (tmp_path / "x").mkdir()
    bad = "  mwaa-elt:operator:\n    principals: [platform-engineers]\n"
    with pytest.raises(ConfigError, match=r"mwaa-elt:operator.principals: .*is not an IAM role or user ARN"):  # fmt: skip
        load_stage(_stacks(tmp_path / "x", "staging", bad), "staging")
