"""`mwaa-elt promote` starts its gates' Airflow before it imports the command line, from what the
last promotion into the stage recorded; the record only saves time, never changes the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwaa_elt.airflow_environments import override_variable
from mwaa_elt.project import Project
from mwaa_elt.promote import airflow_ahead, gates
from mwaa_elt.stage import load_stage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("arguments", "target"),
    [
        (["promote", "--to", "dev"], ("dev", None, None)),
        (["promote", "--yes", "--json", "--to=prod", "orders", "users"], ("prod", None, None)),
        (
            ["promote", "--from", "dev", "--to", "staging", "-C", "proj"],
            ("staging", "dev", Path("proj")),
        ),
        (
            ["promote", "--project-dir=proj", "--to", "dev", "--to", "prod"],
            ("prod", None, Path("proj")),
        ),
        # a value that looks like an option is still the value of the option before it
        (["promote", "--source-profile", "--to", "--to", "dev"], ("dev", None, None)),
        (["promote", "--", "--to", "dev"], None),  # pipeline names after `--`
        (["promote", "--to"], None),
        (["promote", "--to", "dev", "--help"], None),
        # short options: attached values and flags clustered before the one that takes a value
        (["promote", "-Cproj", "--to", "dev"], ("dev", None, Path("proj"))),
        (["promote", "-yC", "proj", "--to", "dev"], ("dev", None, Path("proj"))),
        (["promote", "-yCproj", "--to=dev"], ("dev", None, Path("proj"))),
        (["promote", "-C=proj", "--to", "dev"], ("dev", None, Path("=proj"))),  # as Click has it
        (["promote", "-x", "--to", "dev"], None),  # a letter promote has not
        (["promote", "--plan"], None),
        (["render", "--to", "dev"], None),
        ([], None),
    ],
)
def test_the_stage_is_read_from_a_promotions_arguments_only(
    arguments: list[str], target: tuple[str, str | None, Path | None] | None
) -> None:
    assert airflow_ahead.promotion_target(arguments) == target


def _project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "stacks", root / "stacks")
    (root / "Pulumi.yaml").write_text("name: mwaa-elt\nruntime: python\n")
    return Project(root.resolve())


def test_the_record_holds_while_the_stack_files_are_those_it_was_made_from(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert airflow_ahead.recorded(project.root, "dev") == []  # no record yet

    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["3.0.6"])
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "prod", ["2.11.0", "3.0.6"])
    assert airflow_ahead.recorded(project.root, "dev") == ["3.0.6"]
    assert airflow_ahead.recorded(project.root, "prod") == ["2.11.0", "3.0.6"]  # and its green
    assert airflow_ahead.recorded(project.root, "staging") == []

    record = project.cache_dir / airflow_ahead.RECORD_NAME
    written = record.stat().st_mtime_ns
    time.sleep(0.01)
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["3.0.6"])
    assert record.stat().st_mtime_ns == written  # the same record is not written again

    stack = project.stacks_dir / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("3.0.6", "2.11.0"))
    assert airflow_ahead.recorded(project.root, "dev") == []  # made from other stack files
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["2.11.0"])
    assert airflow_ahead.recorded(project.root, "prod") == []  # stages of other stack files go

    for broken in (b'{"stacks": ', b"[]", b'{"stacks": "x", "stages": {"dev": "no"}}', b"\xff"):
        record.write_bytes(broken)
        assert airflow_ahead.recorded(project.root, "dev") == []
        airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["2.11.0"])
        assert airflow_ahead.recorded(project.root, "dev") == ["2.11.0"]  # written anew


def test_a_record_that_cannot_be_written_costs_only_the_head_start(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.cache_dir.parent.mkdir()
    project.cache_dir.write_text("a file where the cache folder goes")
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["3.0.6"])
    assert airflow_ahead.recorded(project.root, "dev") == []


def test_a_promotion_starts_what_its_stage_recorded_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[SimpleNamespace] = []
    ended: list[SimpleNamespace] = []

    def start(version: str, *, project_root: Path, niceness: int = 0) -> SimpleNamespace:
        if version == "9.9.9":
            raise airflow_ahead.MwaaEltError("no environment of Airflow 9.9.9")
        started.append(SimpleNamespace(version=version, root=project_root, niceness=niceness))
        return started[-1]

    monkeypatch.setattr(airflow_ahead, "_ahead", {})
    monkeypatch.setattr(airflow_ahead, "start_probe", start)
    monkeypatch.setattr(airflow_ahead, "cancel_probe", ended.append)
    project = _project(tmp_path)
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", ["9.9.9", "3.0.6"])
    on_dev = ["promote", "--to", "dev", "-C", str(project.root)]

    airflow_ahead.start_for_arguments(["promote", "--to", "prod", "-C", str(project.root)])
    airflow_ahead.start_for_arguments(["check", "--stage", "dev", "-C", str(project.root)])
    airflow_ahead.start_for_arguments(["promote", "--to", "dev", "-C", str(tmp_path)])
    assert started == []  # another stage, another command, a folder that is no project

    airflow_ahead.start_for_arguments(on_dev)
    airflow_ahead.start_for_arguments(on_dev)  # one per version and project
    (probe,) = started  # an environment that cannot start is left for its gate to report
    assert (probe.version, probe.root) == ("3.0.6", project.root)
    assert probe.niceness == airflow_ahead.NICENESS > 0  # below the command's priority

    assert airflow_ahead.take("2.11.0", project.root) is None
    assert airflow_ahead.take("3.0.6", project.root) is probe
    assert airflow_ahead.take("3.0.6", project.root) is None  # taken once
    airflow_ahead.start_for_arguments(on_dev)
    airflow_ahead.end_untaken()
    assert ended == [started[1]] and airflow_ahead._ahead == {}


def test_a_real_probe_started_ahead_is_the_one_the_gate_runs(tmp_path: Path) -> None:
    """From the record a promotion leaves, the next command's `start_for_arguments` starts the
    environment's real Airflow process, and the gate of that version takes that process."""
    project = _project(tmp_path)
    version = load_stage(project.stacks_dir, "dev").airflow.version
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "dev", [version])

    airflow_ahead.start_for_arguments(["promote", "--to", "dev", "-C", str(project.root)])
    ahead = airflow_ahead._ahead[version, project.root]
    assert ahead.process.poll() is None
    try:
        gates.start_dagbag_gate(version, project.root)
        assert gates._started[version, project.root] is ahead and airflow_ahead._ahead == {}
    finally:
        gates.cancel_started_gates()
    assert ahead.process.poll() is not None and not Path(ahead.scratch.name).exists()


def test_the_executable_starts_the_recorded_airflow_first_and_ends_it_with_itself(
    tmp_path: Path,
) -> None:
    """`python -m mwaa_elt` (the `mwaa-elt` script runs the same `main`) starts the recorded
    stage's Airflow before the command runs, and a command that fails before its gates (here
    its route) leaves no process behind."""
    project = _project(tmp_path)
    marker = tmp_path / "started"
    interpreter = tmp_path / "env" / "bin" / "python"
    interpreter.parent.mkdir(parents=True)
    # Stands for the environment's Python: says it runs, then waits for folders to load.
    interpreter.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec cat > /dev/null\n")
    interpreter.chmod(0o755)
    version = load_stage(project.stacks_dir, "staging").airflow.version
    airflow_ahead.remember(project.cache_dir, project.stacks_dir, "staging", [version])

    done = subprocess.run(
        [sys.executable, "-m", "mwaa_elt", "promote", "--to", "staging", "-C", str(project.root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, override_variable(version): str(interpreter), "NO_COLOR": "1"},
    )
    assert done.returncode != 0 and "promotes from dev" in done.stderr
    assert marker.is_file(), "the environment's interpreter was not started"
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)  # ended with the command


def test_starting_ahead_imports_neither_the_command_line_nor_the_stage_model() -> None:
    """What `mwaa-elt` imports before it starts a promotion's Airflow: were the stage model
    (pydantic), Typer or botocore among it, the head start would be gone."""
    code = (
        "import sys; import mwaa_elt.promote.airflow_ahead; "
        "print(sorted(m for m in ('pydantic', 'typer', 'rich', 'botocore', 'yaml') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


_WORDS = st.sampled_from(
    [
        "--to",
        "--to=dev",
        "--from",
        "--from=dev",
        "--source-profile",
        "--project-dir",
        "--project-dir=p",
        "-C",
        "-Cp",
        "-C=p",
        "-y",
        "-yC",
        "-yCq",
        "-yy",
        "--yes",
        "--plan",
        "--json",
        "--diff",
        "--no-diff",
        "--prune",
        "--",
        "dev",
        "prod",
        "p",
        "orders",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=8))
def test_what_is_read_ahead_is_what_the_command_line_reads(words: list[str]) -> None:
    """For any arguments the command line accepts, the route and project folder read ahead are
    those it parses (or nothing is read ahead)."""
    import typer.main
    from typer._click.exceptions import UsageError  # Typer's own copy of Click

    from mwaa_elt.cli import app

    promote = typer.main.get_command(app).commands["promote"]
    try:
        parsed = promote.make_context("promote", list(words)).params
    except UsageError:  # arguments the command line refuses: it says why in its turn
        return
    project_dir = parsed["project_dir"]
    read = airflow_ahead.promotion_target(["promote", *words])
    assert read is None or read == (
        parsed["to"],
        parsed["from_"],
        project_dir and Path(project_dir),
    )


def test_the_options_read_ahead_are_those_of_promote_that_take_a_value() -> None:
    """`promotion_target` skips the value of each option that takes one; an option added to
    `promote` later and left out here would have its value read as a word of its own."""
    import typer.main

    from mwaa_elt.cli import app

    promote = typer.main.get_command(app).commands["promote"]
    valued = {
        name
        for param in promote.params
        if param.param_type_name == "option" and not param.is_flag
        for name in param.opts
    }
    assert valued == airflow_ahead._VALUED
    short_flags = {
        name
        for param in promote.params
        if param.param_type_name == "option" and param.is_flag
        for name in param.opts
        if not name.startswith("--")
    }
    assert short_flags == airflow_ahead._SHORT_FLAGS
