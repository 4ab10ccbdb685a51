"""The upgrade's re-promotion: every live pipeline re-rendered from its recorded release for the
new Airflow line, written, verified with Airflow, and recorded with that line in the manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from airflow_fake import FakeAirflow, StubbedMwaa
from airflow_lines import environment_overrides
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.lifecycle.upgrade import LiveUpgrade, RepromoteLive
from mwaa_elt.promote.identity import identity_now
from mwaa_elt.promote.store import StageStore
from mwaa_elt.stage import load_all_stages


def _set_version(project: Path, version: str) -> None:
    stack = project / "stacks/Pulumi.dev.yaml"
    lines = [
        f"  mwaa-elt:airflowVersion: {version}" if "mwaa-elt:airflowVersion:" in line else line
        for line in stack.read_text().splitlines()
    ]
    stack.write_text("\n".join(lines) + "\n")


def test_repromote_renders_every_live_pipeline_for_the_new_line_and_records_it(
    scratch_project: Path,
    project_root: Path,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for folder in ("pipelines", "dag_templates", "infra/environment"):
        shutil.copytree(project_root / folder, scratch_project / folder)
    for variable, python in environment_overrides().items():
        monkeypatch.setenv(variable, python)
    from mwaa_elt.promote import gates

    gated: list[tuple[str, list[str]]] = []  # the DagBag gate costs an Airflow start-up
    monkeypatch.setattr(gates, "dagbag_gate", lambda render, stage, root, names: gated.append((stage.airflow.version, sorted(names))))  # fmt: skip
    monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)
    monkeypatch.chdir(scratch_project)
    _set_version(scratch_project, "2.11.0")
    done = CliRunner().invoke(cli.app, ["promote", "--to", "dev", "--yes", "--skip-mwaa-checks"])
    assert done.exit_code == 0, done.output

    _set_version(scratch_project, "3.0.6")
    stages = load_all_stages(scratch_project / "stacks")
    dev = stages["dev"]
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint)
    store = StageStore(dev, s3)
    before, _ = store.load_manifest()
    assert {r.airflow_version for r in before.pipelines.values()} == {"2.11.0"}

    def served(dag_id: str) -> str | None:
        found = store.get(f"{dev.dags_prefix}{dag_id}.py")
        return None if found is None else found[0].decode()

    fake = FakeAirflow(3, version="3.0.6", source_of=served)
    upgrade = LiveUpgrade(
        project_root=scratch_project,
        stacks_dir=scratch_project / "stacks",
        environment_dir=scratch_project / "infra/environment",
        stages=stages,
        stage=dev,
        mwaa=StubbedMwaa({dev.environment_name: fake}),
        s3=s3,
        identity=identity_now("arn:aws:iam::123456789012:user/moto"),
    )
    said = upgrade.repromote(RepromoteLive(tuple(sorted(before.pipelines)), "3.0.6"))

    after, _ = store.load_manifest()
    assert set(after.pipelines) == set(before.pipelines)
    assert {r.airflow_version for r in after.pipelines.values()} == {"3.0.6"}
    rewritten = [n for n in after.pipelines if after.pipelines[n].rendered_hash != before.pipelines[n].rendered_hash]  # fmt: skip
    assert f"{len(rewritten)} DAG file(s) rewritten for Airflow 3.0.6" in said
    # The examples render differently for each line (Airflow 3's task SDK imports).
    assert rewritten and gated[-1] == ("3.0.6", sorted(rewritten))
    for name, record in after.pipelines.items():
        assert record.source_hash == before.pipelines[name].source_hash  # the same release
