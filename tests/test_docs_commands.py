"""Every `mwaa-elt` transcript the README and the docs show runs as shown, so they cannot drift.

Each page's `console` transcripts run in order, in a scratch copy of the project, the promotion
commands against the sandbox (moto on loopback), after the preparation a transcript presumes (a
broken spec, an earlier release); a `console fault-injected` block shows what only a fault
produces, and tests/promote/test_faults.py injects it; a `console needs-mwaa` block shows
commands that talk to a real MWAA environment (moto has no MWAA: tests/lifecycle/ stubs it), so
each of its commands is parsed against the CLI, not run. A transcript whose output shows `error:` or problems expects
exit 1, any other exit 0; shown `path:line:col:` problems must be exactly those printed. Every
command in `bash` blocks (references, not transcripts) is checked against the CLI by
test_ci_templates.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from airflow_lines import environment_overrides
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.promote.sandbox import Sandbox, create_stage_buckets, sandbox
from mwaa_elt.stage import load_all_stages

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROJECT_PARTS = ("Pulumi.yaml", "stacks", "pipelines", "dag_templates", "infra/environment")
# A long-running server, shown to explain the sandbox: `make demo` and its own tests run it.
NOT_RUN_HERE = {"sandbox"}
# Reads a real MWAA environment, which the sandbox (moto) does not have:
# tests/lifecycle/test_stage_import.py runs it against MWAA stubbed with botocore's Stubber.
NEEDS_REAL_MWAA = {("stage", "import")}
# The sandbox has no MWAA, so promotion skips its gates there.
SKIPS_MWAA = {"promote", "rollback"}
PROBLEM = re.compile(r"^pipelines/\S+:\d+:\d+: ")
# What a transcript presumes of the project before its command runs.
BROKEN_SPEC = """\
pipeline: broken
description: x
owner: airflow
schedul: '@daily'
start_date: 2024-13-01
tasks:
  - id: a
    athena: {sql: "SELEC * FROM dev_movielens.ratings"}
    depends_on: [b]
  - id: b
    athena: {sql: SELECT 1}
    depends_on: [a]
"""


def _broken_spec(project: Path) -> None:
    (project / "pipelines/broken").mkdir()
    (project / "pipelines/broken/broken.yaml").write_text(BROKEN_SPEC)


def _no_broken_spec(project: Path) -> None:
    shutil.rmtree(project / "pipelines/broken")


def _two_releases_in_dev(project: Path) -> None:
    """dev runs a second release of movielens_scifi, so there is one to roll back to."""
    for change in ("", "\n-- a second release\n"):
        sql = project / "pipelines/movielens_scifi/sql/create_scifi.sql"
        sql.write_text(sql.read_text() + change)
        done = runner.invoke(app, ["promote", "--to", "dev", "--yes", "--skip-mwaa-checks"])
        assert done.exit_code == 0, done.output


PREPARE = {
    ("validate", "pipelines/broken"): _broken_spec,
    ("rollback", "movielens_scifi", "--stage", "dev"): _two_releases_in_dev,
}
AFTER = {("validate", "pipelines/broken"): _no_broken_spec}

runner = CliRunner()
# `run` starts moto in its own process, as a user's shell would: moto's state is per process, and
# the sandbox these tests run already lives in this one.
OWN_PROCESS = {"run"}


def _in_own_process(words: list[str], project: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mwaa-elt")), *words],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@dataclass(frozen=True)
class Shown:
    """One command as a page shows it, and the exit code its transcript implies."""

    page: str
    line: int
    words: tuple[str, ...]
    exit_code: int
    problems: tuple[str, ...] = ()


def _shown(path: Path) -> list[Shown]:
    text = path.read_text(encoding="utf-8")
    found = []
    for block in re.finditer(r"```console\n(.*?)```", text, re.S):
        first = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ "):
                continue
            command = re.sub(r"(^|\s)#.*$", "", line[2:]).strip()
            if not command.startswith("mwaa-elt ") or re.search(r"<[a-z_-]+>|\.\.\.", command):
                continue
            output = []
            for rest in lines[index + 1 :]:
                if rest.startswith("$ "):
                    break
                output.append(rest)
            words = tuple(shlex.split(command.split("|")[0].split(">")[0]))[1:]
            problems = tuple(o for o in output if PROBLEM.match(o))
            failed = bool(problems) or any(o.lstrip().startswith("error:") for o in output)
            found.append(Shown(path.name, first + index, words, 1 if failed else 0, problems))
    return found


SHOWN = {path.name: _shown(path) for path in DOCUMENTS}


@pytest.fixture(scope="module")
def moto() -> Iterator[Sandbox]:
    with sandbox(load_all_stages(ROOT / "stacks")) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, moto: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    for part in PROJECT_PARTS:
        source, target = ROOT / part, tmp_path / part
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    requests.post(f"{moto.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    create_stage_buckets(moto.endpoint_url, load_all_stages(ROOT / "stacks"))
    for name, value in {
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        **environment_overrides(),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _needs_mwaa(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    text = path.read_text(encoding="utf-8")
    found = []
    for block in re.finditer(r"```console needs-mwaa\n(.*?)```", text, re.S):
        first = text.count("\n", 0, block.start(1)) + 1
        for index, line in enumerate(block.group(1).splitlines()):
            if line.startswith("$ mwaa-elt "):
                found.append((first + index, tuple(shlex.split(line[2:]))[1:]))
    return found


NEEDS_MWAA = [(path.name, line, words) for path in DOCUMENTS for line, words in _needs_mwaa(path)]


@pytest.mark.parametrize(("page", "line", "words"), NEEDS_MWAA)
def test_every_command_needing_mwaa_parses_as_shown(
    page: str, line: int, words: tuple[str, ...]
) -> None:
    import typer
    from typer.core import TyperGroup

    command = typer.main.get_command(app)
    rest = list(words)
    while isinstance(command, TyperGroup):
        name = rest.pop(0)
        found = command.get_command(command.make_context("mwaa-elt", ["--help"], resilient_parsing=True), name)  # fmt: skip
        assert found is not None, f"{page}:{line}: no command {name!r}"
        command = found
    command.make_context(" ".join(words), rest)  # a usage error raises


def test_the_docs_show_commands_to_run() -> None:
    shown = [s for page in SHOWN.values() for s in page]
    assert {s.words[0] for s in shown} >= {"validate", "render", "check", "promote", "status"}


@pytest.mark.parametrize("page", [name for name, shown in SHOWN.items() if shown])
def test_every_command_a_page_shows_runs_as_shown(page: str, project: Path) -> None:
    for shown in SHOWN[page]:
        if shown.words[0] in NOT_RUN_HERE or shown.words[:2] in NEEDS_REAL_MWAA:
            continue
        for prefix, prepare in PREPARE.items():
            if shown.words[: len(prefix)] == prefix:
                prepare(project)
        words = list(shown.words)
        if words[0] in SKIPS_MWAA and "--skip-mwaa-checks" not in words and "--plan" not in words:
            words.append("--skip-mwaa-checks")
        if words[0] == "check" and "--budget" not in words:
            words += [
                "--budget",
                "60",
            ]  # parse time depends on the machine's load; bench measures it
        where = f"{page}:{shown.line}: mwaa-elt {' '.join(shown.words)}"
        if words[0] in OWN_PROCESS:
            exit_code, output = _in_own_process(words, project)
        else:
            result = runner.invoke(app, words, input="y\n")
            exit_code, output = result.exit_code, result.output
        assert exit_code == shown.exit_code, f"{where}\n{output}"
        assert "Traceback" not in output, where
        if shown.problems:
            printed = [line for line in output.splitlines() if PROBLEM.match(line)]
            assert printed == list(shown.problems), where
        for prefix, undo in AFTER.items():
            if shown.words[: len(prefix)] == prefix:
                undo(project)
