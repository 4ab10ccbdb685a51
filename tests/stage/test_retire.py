"""The stack change that retires blue (`mwaa_elt.stage.retire`): only the lines it must touch,
every layout of the keys it meets, and a result the stage loader reads as green serving."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import Stage, load_stage
from mwaa_elt.stage.retire import retire_blue_change

ROOT = Path(__file__).resolve().parents[2]


def _stage(tmp_path: Path, name: str, extra: str) -> tuple[Stage, Path]:
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    path = stacks / f"Pulumi.{name}.yaml"
    path.write_text(path.read_text() + extra)
    return load_stage(stacks, name), path


def _retired(tmp_path: Path, name: str, extra: str) -> Stage:
    stage, path = _stage(tmp_path, name, extra)
    before = path.read_text()
    change = retire_blue_change(stage, before, path.name)
    removed = [
        line[1:]
        for line in change.diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    moved = ("airflowVersion", "environmentClass", "minWorkers", "maxWorkers", "schedulers")
    for line in removed:  # only the block and the stage's own keys it moves
        assert line in extra.splitlines() or line.lstrip().startswith(
            tuple(f"mwaa-elt:{key}:" for key in moved)
        ), line
    path.write_text(change.after)
    return load_stage(path.parent, name)


def test_options_the_stage_file_lacks_are_added_after_its_class(tmp_path: Path) -> None:
    block = (
        "  mwaa-elt:cutover:\n"
        "    airflowVersion: 3.2.1\n"
        "    environmentClass: mw1.medium\n"
        "    maxWorkers: 4\n"
        "    airflowConfigurationOptions:\n"
        "      core.default_task_retries: '3'\n"
    )
    retired = _retired(tmp_path, "dev", block)
    assert retired.config.serving_environment == "green" and retired.config.cutover is None
    assert (retired.airflow.version, retired.config.environment_class) == ("3.2.1", "mw1.medium")
    assert retired.config.max_workers == 4
    assert retired.config.airflow_configuration_options == {"core.default_task_retries": "3"}
    assert retired.environment_name == "mwaa-elt-dev-green"


def test_a_flow_style_block_and_an_explicit_blue_are_replaced(tmp_path: Path) -> None:
    block = (
        "  mwaa-elt:servingEnvironment: blue\n"
        "  mwaa-elt:cutover: {airflowVersion: 3.0.6, environmentClass: mw1.large}  # to 3\n"
        "  # a comment after the block stays\n"
    )
    stage, path = _stage(tmp_path, "staging", block)
    change = retire_blue_change(stage, path.read_text(), path.name)
    assert "servingEnvironment: blue" not in change.after
    assert change.after.count("servingEnvironment") == 1
    assert change.after.endswith("  # a comment after the block stays\n")
    path.write_text(change.after)
    assert load_stage(path.parent, "staging").environment_name == "mwaa-elt-staging-green"


def test_without_a_cutover_block_there_is_nothing_to_retire(tmp_path: Path) -> None:
    stage, path = _stage(tmp_path, "staging", "")
    with pytest.raises(ConfigError, match=r"mwaa-elt:cutover: missing; retiring blue"):
        retire_blue_change(stage, path.read_text(), path.name)
