"""The `cutover:` stack setting: precise errors, and the green environment's derived names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import load_stage
from mwaa_elt.stage.green import GreenStage, environments, paused_on_creation

KEY = "mwaa-elt:cutover"


def _with_cutover(project: Path, stage: str, block: Any) -> Path:
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"][KEY] = block
    path.write_text(yaml.safe_dump(data))
    return path


def _errors(project: Path, stage: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stage(project / "stacks", stage)
    return caught.value.messages


BAD = [
    (
        {"airflowVersion": "3.9.9", "environmentClass": "mw1.large"},
        [
            "mwaa-elt:cutover.airflowVersion: '3.9.9' is not an Airflow version MWAA offers; allowed:"
        ],
    ),
    (
        {"airflowVersion": "3.0.6", "environmentClass": "mw1.huge"},
        ["mwaa-elt:cutover.environmentClass: 'mw1.huge' is not an MWAA environment class"],
    ),
    (
        {"airflowVersion": "3.0.6", "environmentClass": "mw1.large", "maxWorker": 4},
        ["mwaa-elt:cutover.maxWorker: unknown key; did you mean 'maxWorkers'?"],
    ),
    (
        {"environmentClass": "mw1.large"},
        ["mwaa-elt:cutover.airflowVersion: missing; this setting is required"],
    ),
    (
        # prod runs 2.11.0 on mw1.large: a green copy of blue is refused, with the fix.
        {"airflowVersion": "2.11.0", "environmentClass": "mw1.large"},
        [
            "mwaa-elt:cutover: airflowVersion 2.11.0 and environmentClass mw1.large are the "
            "stage's own and nothing else differs, so the green environment would copy the blue "
            "one; set the version (or class) to move to, or remove the cutover block"
        ],
    ),
    (
        # prod's 3 schedulers and 10 workers cannot run on mw1.micro.
        {"airflowVersion": "3.0.6", "environmentClass": "mw1.micro"},
        ["mwaa-elt:cutover: the green environment's maxWorkers (10):", "set cutover.schedulers"],
    ),
    (
        {"airflowVersion": "3.0.6", "environmentClass": "mw1.large", "minWorkers": 12},
        ["less than minWorkers (12)", "set cutover.maxWorkers"],
    ),
    (
        {
            "airflowVersion": "3.0.6",
            "environmentClass": "mw1.large",
            "airflowConfigurationOptions": {"secrets.backend": "x"},
        },
        ["'secrets.backend' is set by mwaa-elt", "set cutover.airflowConfigurationOptions"],
    ),
    ("3.0.6", ["mwaa-elt:cutover: expected a mapping (key: value lines)"]),
]


@pytest.mark.parametrize(("block", "expected"), BAD)
def test_a_bad_cutover_block_is_refused_with_the_key_and_the_fix(scratch_project, block, expected):
    _with_cutover(scratch_project, "prod", block)
    errors = _errors(scratch_project, "prod")
    assert len(errors) == 1, errors
    assert errors[0].startswith("stacks/Pulumi.prod.yaml: ") or "Pulumi.prod.yaml: " in errors[0]
    for part in expected:
        assert part in errors[0], errors[0]


def test_the_same_version_on_another_class_is_a_valid_cutover(scratch_project):
    _with_cutover(
        scratch_project, "prod", {"airflowVersion": "2.11.0", "environmentClass": "mw1.xlarge"}
    )
    green = load_stage(scratch_project / "stacks", "prod").green
    assert green is not None and green.config.environment_class == "mw1.xlarge"


def test_green_takes_the_blocks_settings_and_the_stages_for_the_rest(scratch_project):
    _with_cutover(
        scratch_project,
        "prod",
        {"airflowVersion": "3.0.6", "environmentClass": "mw1.xlarge", "maxWorkers": 20},
    )
    blue = load_stage(scratch_project / "stacks", "prod")
    green = blue.green
    assert isinstance(green, GreenStage)
    assert environments(blue) == [blue, green]
    assert (green.airflow.version, green.config.environment_class) == ("3.0.6", "mw1.xlarge")
    assert (green.config.min_workers, green.config.max_workers, green.config.schedulers) == (
        2,
        20,
        3,
    )
    assert green.config.airflow_configuration_options == blue.config.airflow_configuration_options
    assert green.config.cutover is None and green.green is None
    # Its own names ...
    assert green.environment_name == "mwaa-elt-prod-green"
    assert green.environment_arn.endswith(":environment/mwaa-elt-prod-green")
    assert green.log_groups["Task"] == "airflow-mwaa-elt-prod-green-Task"
    assert green.dags_prefix == "green/dags/"
    assert (green.paths.requirements, green.paths.plugins, green.paths.startup_script) == (
        "green/requirements.txt",
        "green/plugins.zip",
        "green/startup.sh",
    )
    assert green.manifest_key == ".mwaa-elt/green/manifest.json"
    assert green.lock_key == ".mwaa-elt/green/lock.json"
    # ... and the stage's for everything the two environments share.
    for shared in (
        "source_bucket",
        "execution_role_arn",
        "scripts_prefix",
        "athena_workgroup",
        "glue_databases",
        "data_lake_bucket",
        "secrets_prefix",
        "kms_key_alias",
        "emr_service_role",
        "tags",
    ):
        assert getattr(green, shared) == getattr(blue, shared), shared
    assert paused_on_creation(green) and not paused_on_creation(blue)


def test_without_cutover_a_stage_has_one_environment(stages):
    for stage in stages.values():
        assert stage.config.cutover is None
        assert stage.green is None and environments(stage) == [stage]


def test_cli_reports_a_bad_cutover_with_exit_1_and_no_traceback(scratch_project):
    _with_cutover(
        scratch_project, "staging", {"airflowVersion": "2.11.0", "environmentClass": "mw1.medium"}
    )
    result = CliRunner().invoke(app, ["stage", "show", "staging", "-C", str(scratch_project)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)  # the console entry point prints it
    assert "mwaa-elt:cutover: airflowVersion 2.11.0 and environmentClass mw1.medium" in str(
        result.exception
    )
