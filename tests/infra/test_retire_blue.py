"""Retiring blue after a cutover, under Pulumi's mocks: with the stack change `cutover finish`
prints (`servingEnvironment: green`, the block folded into the stage's keys), the program
declares no blue environment and nothing that was blue's only, and declares every green
resource under the same type, logical name and parent (so the same URN) with the same
settings — Pulumi deletes blue and leaves green as it is. The shared resources change only
where their IAM and key policies named blue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from guardrail_checks import every_violation

from mwaa_elt.infra.documents.guardrails import (
    StageInfo,
)
from mwaa_elt.infra.documents.iam_policies import (
    execution_role_policies,
    execution_role_trust_policy,
)
from mwaa_elt.infra.preview import PlannedResource, Preview, run_preview
from mwaa_elt.stage import Stage, load_stage
from mwaa_elt.stage.retire import retire_blue_change

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_DIR = ROOT / "infra" / "environment"
ENVIRONMENT = "aws:mwaa/environment:Environment"
STAGES = ("dev", "staging", "prod")
CUTOVER = "  mwaa-elt:cutover:\n    airflowVersion: 3.0.6\n    environmentClass: mw1.large\n"
# What blue alone had: its environment, its files, its log groups, alarms and dashboard.
BLUE_ONLY = ("airflow", "environment-files", "monitoring")
# The shared resources whose documents named blue's environment (ARN, log groups, Viewer role,
# manifest): they lose blue and keep green.
POLICIES_NAMING_BLUE = {
    "execution-role-role",
    "execution-role-mwaa-baseline",
    "encryption-key",
    "delivery-mwaa-elt-{stage}-ci-promote",
    "delivery-mwaa-elt-{stage}-release-reader-read-releases",
}

Key = tuple[str, str, str | None]


def _key(resource: PlannedResource) -> Key:
    return (resource.type, resource.name, resource.parent)


@pytest.fixture(scope="module")
def previews(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Stage, Preview, Stage, Preview]]:
    """Per stage: the stage with a cutover and its preview, then retired and its preview."""
    out = {}
    for name in STAGES:
        stacks = tmp_path_factory.mktemp(name) / "stacks"
        stacks.mkdir()
        for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
            (stacks / path.name).write_text(path.read_text())
        path = stacks / f"Pulumi.{name}.yaml"
        path.write_text(path.read_text() + CUTOVER)
        cutover = load_stage(stacks, name)
        before = run_preview(cutover, ENVIRONMENT_DIR)
        path.write_text(retire_blue_change(cutover, path.read_text(), path.name).after)
        retired = load_stage(stacks, name)
        out[name] = (cutover, before, retired, run_preview(retired, ENVIRONMENT_DIR))
    return out


def cutover_line(preview: tuple[Stage, object, Stage, object]) -> tuple[int, int]:
    """(blue's Airflow major, green's) of a stage's cutover."""
    cutover, _, retired, _ = preview
    return cutover.airflow.major, retired.airflow.major


@pytest.mark.parametrize("name", STAGES)
def test_retired_stack_declares_green_alone_under_its_own_urns(previews, name):
    _, before, retired, after = previews[name]
    environments = [r for r in after.resources if r.type == ENVIRONMENT]
    assert [r.name for r in environments] == ["airflow-green-environment"]
    assert environments[0].settings["name"] == f"mwaa-elt-{name}-green"
    old = {_key(r): r for r in before.resources}
    new = {_key(r): r for r in after.resources}
    assert set(new) <= set(old)  # nothing new, so nothing is created (or recreated)
    gone = {key[1] for key in set(old) - set(new)}
    # Leaving Airflow 2 (blue) for 3 (green) also ends mwaa-dr's DR_BACKUP_BUCKET variable.
    dr = {n for n in gone if n.startswith("runtime-dr-backup-bucket")}
    assert bool(dr) == (cutover_line(previews[name]) == (2, 3)), dr
    gone -= dr
    assert gone and all(n.split("-")[0] in {"airflow", "environment", "monitoring"} for n in gone)
    assert all(not n.startswith(tuple(f"{b}-green" for b in BLUE_ONLY)) for n in gone)
    assert {n for n in gone if n in BLUE_ONLY} == set(BLUE_ONLY)
    # Every green resource: same URN, same settings, same protection.
    green = [key for key in new if key[1].startswith(tuple(f"{b}-green" for b in BLUE_ONLY))]
    assert len(green) >= 10
    for key in green:
        assert new[key].settings == old[key].settings, key
        assert new[key].protected == old[key].protected, key
    # Everything else the stage shares keeps its settings, but the policies that named blue.
    naming_blue = {n.format(stage=name) for n in POLICIES_NAMING_BLUE}
    changed = {key[1] for key in set(new) - set(green) if new[key].settings != old[key].settings}
    assert changed <= naming_blue and "execution-role-role" in changed
    # No setting names blue's environment, its Airflow roles or its log groups any more.
    # (The source bucket, `airflow-mwaa-elt-<stage>-<account>`, is the stage's and stays.)
    blue = re.compile(
        rf"(environment/|role/)mwaa-elt-{name}(?![-\w])|airflow-mwaa-elt-{name}-(?!green|\d)"
    )
    for resource in new.values():
        assert not blue.search(json.dumps(resource.settings)), resource.name
    assert after.outputs["environment_name"] == f"mwaa-elt-{name}-green"
    assert not any(key.startswith("cutover_") for key in after.outputs)
    if retired.production:
        assert environments[0].protected


@pytest.mark.parametrize("name", STAGES)
def test_the_execution_role_is_scoped_to_green_alone(previews, name):
    cutover, _, retired, after = previews[name]
    (role,) = [r for r in after.resources if r.name == "execution-role-role"]
    trust = json.loads(role.settings["assumeRolePolicy"])
    assert trust == execution_role_trust_policy(retired)
    green_arn = cutover.green.environment_arn
    assert trust["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] == green_arn
    (baseline,) = [
        p.document for p in execution_role_policies(retired) if p.name == "mwaa-baseline"
    ]
    sids = {s["Sid"]: s for s in baseline["Statement"] if "Sid" in s}
    assert sids["PublishMetrics"]["Resource"] == green_arn
    assert sids["EnvironmentLogs"]["Resource"].endswith(
        f"log-group:airflow-mwaa-elt-{name}-green-*"
    )
    # What green could do during the cutover it can still do: each blue-and-green statement
    # of the cutover stage, with blue's resources taken out, is the retired stage's.
    (before,) = [p.document for p in execution_role_policies(cutover) if p.name == "mwaa-baseline"]
    # mwaa-dr's work area is the 2.x line's: a stage that left 2.x for 3.x keeps none of it,
    # and denies every backup again.
    dr_sids = {"MwaaDrWorkArea", "DenyMetadataBackups"}
    if cutover_line(previews[name]) == (2, 3):
        assert "MwaaDrWorkArea" not in sids
        backups = f"{retired.source_bucket_arn}/{retired.backups_prefix}*"
        assert sids["DenyMetadataBackups"]["Resource"] == backups
        before = {**before, "Statement": [s for s in before["Statement"] if s.get("Sid") not in dr_sids]}  # fmt: skip
        baseline = {**baseline, "Statement": [s for s in baseline["Statement"] if s.get("Sid") not in dr_sids]}  # fmt: skip
    assert [s.get("Sid") for s in before["Statement"]] == [s.get("Sid") for s in baseline["Statement"]]  # fmt: skip
    for was, now in zip(before["Statement"], baseline["Statement"], strict=True):
        both = isinstance(was.get("Resource"), list) and len(was["Resource"]) == 2
        if both and any(f"mwaa-elt-{name}-green" in r for r in was["Resource"]):
            was = {**was, "Resource": was["Resource"][1]}  # blue's first, green's second
        assert now == was


@pytest.mark.parametrize("name", STAGES)
def test_every_guardrail_holds_for_the_retired_stack(previews, name):
    _, _, retired, after = previews[name]
    info = StageInfo(name, retired.production)
    assert every_violation(after.resources, info) == []


def test_serving_green_with_a_cutover_block_is_refused_by_name(tmp_path: Path) -> None:
    from mwaa_elt.errors import ConfigError

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
        (stacks / path.name).write_text(path.read_text())
    path = stacks / "Pulumi.staging.yaml"
    path.write_text(path.read_text() + CUTOVER + "  mwaa-elt:servingEnvironment: green\n")
    with pytest.raises(ConfigError) as refused:
        load_stage(stacks, "staging")
    (message,) = refused.value.messages
    assert "Pulumi.staging.yaml: mwaa-elt:servingEnvironment: green makes the" in message
    assert "remove mwaa-elt:cutover or set servingEnvironment back to blue" in message
    path.write_text(
        path.read_text().replace("servingEnvironment: green", "servingEnvironment: red")
    )
    with pytest.raises(
        ConfigError,
        match=r"mwaa-elt:servingEnvironment: 'red' is not allowed; allowed: 'blue', 'green'",
    ):
        load_stage(stacks, "staging")
