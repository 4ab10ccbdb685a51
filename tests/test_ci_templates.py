"""The CI/CD templates: pull requests gate every stage, promotion follows dev → staging → prod
behind approvals, and every `mwaa-elt` command the templates run exists in the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import typer.main
import yaml
from botocore.validate import ParamValidator

from mwaa_elt.cli import app
from mwaa_elt.infra.documents.release_pipeline import pipeline_definition
from mwaa_elt.stage import Stage, load_all_stages

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/mwaa-elt.yml"
ROLLBACK_WORKFLOW = ROOT / ".github/workflows/mwaa-elt-rollback.yml"
ACTIONS = sorted((ROOT / ".github/actions").glob("*/action.yml"))
BUILDSPEC_VALIDATE = ROOT / "ci/codebuild/buildspec-validate.yml"
BUILDSPEC_PROMOTE = ROOT / "ci/codebuild/buildspec-promote.yml"
DOCS = ROOT / "docs/ci-cd.md"
GITHUB_TEMPLATES = [WORKFLOW, ROLLBACK_WORKFLOW, *ACTIONS]

CLI = typer.main.get_command(app)
STAGES: dict[str, Stage] = load_all_stages(ROOT / "stacks")


def _chain() -> list[str]:
    """Stage names in promotion order: each after the stage it promotes from."""
    order: list[str] = []
    pending = dict(STAGES)
    while pending:
        ready = [
            n for n, s in pending.items() if s.promotes_from is None or s.promotes_from in order
        ]
        assert ready, f"promotesFrom forms a cycle among {sorted(pending)}"
        for name in sorted(ready):
            order.append(name)
            del pending[name]
    return order


ORDER = _chain()


@cache
def _load(path: Path) -> dict[str, Any]:
    # Parsed once per file; callers only read the result.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _on(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    return triggers if isinstance(triggers, dict) else {name: None for name in triggers}


# -- finding `mwaa-elt ...` invocations in shell scripts -------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One `mwaa-elt` command line found in a template, split into shell words."""

    where: str
    words: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        return "mwaa-elt " + " ".join(self.words)

    def option_names(self) -> list[str]:
        names = []
        for word in self.words:
            # `${TO:+--to "$TO"}` passes --to only when TO is set.
            word = word.split(":+", 1)[1] if ":+" in word else word
            if word.startswith("-") and len(word) > 1:
                names.append(word.split("=", 1)[0])
        return names

    def value(self, option: str, *, resolve: bool = True) -> str | None:
        """The shell word after `option`; `$VAR` resolved through the step's env if `resolve`."""
        words = list(self.words)
        if option not in words or words.index(option) + 1 >= len(words):
            return None
        raw = words[words.index(option) + 1]
        env = dict(self.env)
        return env.get(raw[1:], raw) if resolve and raw.startswith("$") else raw


_START = re.compile(r"(?:^|(?<=[\s;&|(/]))mwaa-elt(?=\s|$)")


def _command_segment(text: str) -> str:
    """The words of one command: up to the first unquoted |, ;, &, > or comment."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "|;&>\n" or (char == "#" and (i == 0 or text[i - 1].isspace())):
            return text[:i]
    return text


def invocations_in(script: str, where: str, env: dict[str, str] | None = None) -> list[Invocation]:
    """Every `mwaa-elt` invocation in a shell script (line continuations joined)."""
    script = script.replace("\\\n", " ")
    found = []
    for match in _START.finditer(script):
        segment = _command_segment(script[match.end() :])
        found.append(
            Invocation(where, tuple(shlex.split(segment)), tuple(sorted((env or {}).items())))
        )
    return found


@cache
def _workflow_invocations(path: Path) -> list[Invocation]:
    found = []
    for job_id, job in _load(path)["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" in step:
                env = {**job.get("env", {}), **step.get("env", {})}
                where = f"{path.relative_to(ROOT)}: job {job_id}, step {index + 1}"
                found += invocations_in(step["run"], where, env)
    return found


def _action_invocations(path: Path) -> list[Invocation]:
    found = []
    for index, step in enumerate(_load(path)["runs"]["steps"]):
        if "run" in step:
            where = f"{path.relative_to(ROOT)}: step {index + 1}"
            found += invocations_in(step["run"], where, step.get("env", {}))
    return found


def _buildspec_commands(path: Path) -> list[tuple[str, str]]:
    """(phase, command) for every command of every phase, `finally` blocks included."""
    commands = []
    for phase, body in _load(path)["phases"].items():
        for key in ("commands", "finally"):
            commands += [(phase, command) for command in body.get(key, [])]
    return commands


def _buildspec_invocations(path: Path) -> list[Invocation]:
    variables = _load(path).get("env", {}).get("variables", {})
    found = []
    for phase, command in _buildspec_commands(path):
        found += invocations_in(command, f"{path.relative_to(ROOT)}: {phase}", variables)
    return found


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def docs_invocations() -> list[Invocation]:
    """Every `mwaa-elt` command in a shell block of the README and the docs pages."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        for kind, block in re.findall(r"```(bash|console|sh|shell)\n(.*?)```", text, re.S):
            if kind == "console":  # a transcript: commands follow a `$ ` prompt, the rest is output
                lines = block.splitlines()
                block = "\n".join(line[2:] for line in lines if line.startswith("$ "))
            block = re.sub(r"(?m)(^|\s)#.*$", "", block)  # comments mention, they do not run
            found += invocations_in(block, where)
    return found


def all_invocations() -> list[Invocation]:
    found = _workflow_invocations(WORKFLOW) + _workflow_invocations(ROLLBACK_WORKFLOW)
    for action in ACTIONS:
        found += _action_invocations(action)
    found += _buildspec_invocations(BUILDSPEC_VALIDATE) + _buildspec_invocations(BUILDSPEC_PROMOTE)
    return found + docs_invocations()


# -- checking an invocation against the click command tree ---------------------------------------


# Typer builds on its own copy of click, so commands and parameters are told apart by duck typing.
def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option"]


def _resolve(words: tuple[str, ...]) -> tuple[list[str], Any, list[str]]:
    """(command path, the click command it reaches, the remaining words)."""
    command: Any = CLI
    path: list[str] = []
    rest = list(words)
    while _is_group(command) and rest and rest[0] in command.commands:
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    return path, command, rest


def problems(invocation: Invocation) -> list[str]:
    """What is wrong with a `mwaa-elt` invocation for the CLI as it is; empty when it is valid."""
    path, command, rest = _resolve(invocation.words)
    if _is_group(command):
        known = ", ".join(sorted(command.commands))
        wanted = rest[0] if rest else "(nothing)"
        return [f"'{' '.join(['mwaa-elt', *path, wanted])}' is not a command; known: {known}"]
    options = {opt: p for p in _options(command) for opt in (*p.opts, *p.secondary_opts)}
    found: list[str] = []
    positional = 0
    words = iter(rest)
    for word in words:
        name = word.split(":+", 1)[1] if ":+" in word else word
        name = name.split("=", 1)[0]
        if name.startswith("-") and len(name) > 1:
            param = options.get(name)
            if param is None:
                found.append(f"{' '.join(path)} has no option {name}; it has {sorted(options)}")
            elif not param.is_flag and not param.count and "=" not in word:
                next(words, None)
        else:
            positional += 1
    used = set(invocation.option_names())
    for param in _options(command):
        if param.required and not used & {*param.opts, *param.secondary_opts}:
            found.append(f"{' '.join(path)} requires {param.opts[0]}")
    required_args = [p for p in command.params if p.param_type_name == "argument" and p.required]
    if positional < len(required_args):
        names = ", ".join(p.name or "" for p in required_args)
        found.append(f"{' '.join(path)} requires the argument(s) {names}")
    return found


INVOCATIONS = all_invocations()


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=lambda i: f"{i.where}: {i.text}")
def test_every_mwaa_elt_command_in_the_templates_exists(invocation: Invocation) -> None:
    assert problems(invocation) == [], invocation.where


def test_the_command_check_catches_what_does_not_exist() -> None:
    def check(line: str) -> list[str]:
        (invocation,) = invocations_in(line, "example")
        return problems(invocation)

    assert check("mwaa-elt validate --format json") == []
    assert check('mwaa-elt check --stage "$STAGE" --budget 2 | tee out.txt') == []
    assert check("mwaa-elt stage show dev --json > stage.json") == []
    assert "no option --stagee" in " ".join(check("mwaa-elt check --stagee dev"))
    assert "requires --stage" in " ".join(check("mwaa-elt check --json"))
    assert "is not a command" in " ".join(check("mwaa-elt frobnicate --to dev"))
    assert "is not a command" in " ".join(check("mwaa-elt stage"))
    assert "requires the argument" in " ".join(check("mwaa-elt stage show --json"))
    (shell,) = invocations_in('mwaa-elt rollback "$P" --stage x ${TO:+--to "$TO"} --yes', "x")
    assert shell.option_names() == ["--stage", "--to", "--yes"]


def test_templates_run_every_command_a_release_needs() -> None:
    used = {inv.words[0] for inv in INVOCATIONS if inv.words}
    assert {"validate", "check", "promote", "status", "rollback", "stage"} <= used


# -- GitHub Actions --------------------------------------------------------------------------------


def _jobs() -> dict[str, dict[str, Any]]:
    return _load(WORKFLOW)["jobs"]


def _job_invocations(job_id: str, command: str) -> list[Invocation]:
    prefix = f"{WORKFLOW.relative_to(ROOT)}: job {job_id},"
    return [
        inv
        for inv in _workflow_invocations(WORKFLOW)
        if inv.where.startswith(prefix) and inv.words[:1] == (command,)
    ]


def _environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def _needs(job: dict[str, Any]) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _gate_jobs() -> dict[str, dict[str, Any]]:
    return {
        job_id: job for job_id, job in _jobs().items() if not _job_invocations(job_id, "promote")
    }


def test_pull_requests_validate_and_check_every_stage_in_stacks() -> None:
    assert "pull_request" in _on(_load(WORKFLOW))
    gates = _gate_jobs()
    # Gates run on every event: no condition could leave a pull request unchecked.
    assert all("if" not in job for job in gates.values()), sorted(gates)
    validated = [job_id for job_id in gates if _job_invocations(job_id, "validate")]
    assert validated, "no job runs mwaa-elt validate"
    checked: set[str] = set()
    for job_id, job in gates.items():
        matrix_stages = job.get("strategy", {}).get("matrix", {}).get("stage", [])
        for inv in _job_invocations(job_id, "check"):
            stage = inv.value("--stage")
            checked |= set(matrix_stages) if stage == "${{ matrix.stage }}" else {stage}
    assert checked == set(STAGES)


def test_gates_never_touch_aws_and_promotions_only_run_on_main() -> None:
    for job_id, job in _jobs().items():
        holds_token = job.get("permissions", {}).get("id-token") == "write"
        if job_id in _gate_jobs():
            assert not holds_token and _environment(job) is None, job_id
        else:
            assert holds_token, job_id
            condition = job.get("if", "")
            assert "github.event_name == 'push'" in condition, job_id
            assert "github.ref == 'refs/heads/main'" in condition, job_id
    assert _load(WORKFLOW)["permissions"] == {"contents": "read"}


def _promotion_jobs() -> dict[str, str]:
    """Target stage → the job promoting into it; each job promotes into exactly one stage."""
    by_stage: dict[str, str] = {}
    for job_id in _jobs():
        targets = {inv.value("--to") for inv in _job_invocations(job_id, "promote")}
        if targets:
            assert len(targets) == 1, (job_id, targets)
            (target,) = targets
            assert target not in by_stage, f"{job_id} and {by_stage.get(target)} both promote it"
            by_stage[str(target)] = job_id
    return by_stage


def test_promotion_jobs_follow_promotes_from_and_never_skip_a_stage() -> None:
    jobs, by_stage = _jobs(), _promotion_jobs()
    assert set(by_stage) == set(STAGES)
    for name in ORDER:
        job_id, source = by_stage[name], STAGES[name].promotes_from
        for inv in _job_invocations(job_id, "promote"):
            assert inv.value("--from") == source, inv.text
            # A stage in another account is read with its own credentials (the release reader).
            if source is not None and STAGES[source].account_id != STAGES[name].account_id:
                assert inv.value("--source-profile"), inv.text
        if source is None:
            assert set(_gate_jobs()) <= _needs(jobs[job_id]), job_id
        else:
            assert by_stage[source] in _needs(jobs[job_id]), (job_id, source)


def test_promotions_run_in_their_environment_one_at_a_time_plan_first() -> None:
    jobs, groups = _jobs(), set()
    for name, job_id in _promotion_jobs().items():
        job = jobs[job_id]
        # Environments staging and prod carry the required reviewers: the manual approval.
        assert _environment(job) == name, job_id
        concurrency = job["concurrency"]
        assert name in concurrency["group"] and concurrency["group"] not in groups
        assert concurrency.get("cancel-in-progress", False) is False
        groups.add(concurrency["group"])
        calls = _job_invocations(job_id, "promote")
        plans = [i for i, inv in enumerate(calls) if "--plan" in inv.option_names()]
        applies = [i for i, inv in enumerate(calls) if "--yes" in inv.option_names()]
        assert plans and applies and max(plans) < min(applies), job_id
        assert all("--json" in calls[i].option_names() for i in applies), job_id
        if STAGES[name].promotes_from is not None:
            assert all("--rollback-on-error" in calls[i].option_names() for i in applies)
        steps = job["steps"]
        uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
        assert uploads and uploads[-1].get("if") == "always()", job_id


def test_every_action_is_pinned_and_no_aws_key_is_stored() -> None:
    for path in GITHUB_TEMPLATES:
        text = path.read_text(encoding="utf-8")
        for ref in re.findall(r"uses:\s*(\S+)", text):
            if ref.startswith("./"):
                assert (ROOT / ref / "action.yml").is_file(), (path, ref)
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", ref), (path, ref)
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path
    credentials = _load(ROOT / ".github/actions/stage-credentials/action.yml")
    (assume,) = [s for s in credentials["runs"]["steps"] if "configure-aws-credentials" in str(s)]
    assert {"role-to-assume", "allowed-account-ids", "aws-region"} <= set(assume["with"])


def test_rollback_workflow_covers_every_stage_behind_its_environment() -> None:
    workflow = _load(ROLLBACK_WORKFLOW)
    triggers = _on(workflow)
    assert set(triggers) == {"workflow_dispatch"}
    assert triggers["workflow_dispatch"]["inputs"]["stage"]["options"] == ORDER
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.stage }}"
    assert job["if"] == "github.ref == 'refs/heads/main'"
    # The same concurrency group as the stage's promotions: a rollback never overlaps one.
    promotion_group = _jobs()[_promotion_jobs()["prod"]]["concurrency"]["group"]
    assert job["concurrency"]["group"].replace("${{ inputs.stage }}", "prod") == promotion_group
    (rollback,) = [
        inv for inv in _workflow_invocations(ROLLBACK_WORKFLOW) if inv.words[0] == "rollback"
    ]
    assert rollback.value("--stage") == "${{ inputs.stage }}" and "--yes" in rollback.option_names()


# -- AWS CodeBuild and CodePipeline ----------------------------------------------------------------


def test_codebuild_gate_validates_and_checks_every_stage_on_python_311() -> None:
    spec = _load(BUILDSPEC_VALIDATE)
    assert str(spec["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    calls = _buildspec_invocations(BUILDSPEC_VALIDATE)
    assert calls[0].words == ("validate",)
    assert {inv.value("--stage") for inv in calls if inv.words[0] == "check"} == set(STAGES)
    assert "make setup airflow-envs" in spec["phases"]["install"]["commands"]


def test_codebuild_promotion_plans_first_and_rolls_back_on_error() -> None:
    assert (
        str(_load(BUILDSPEC_PROMOTE)["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    )
    calls = [inv for inv in _buildspec_invocations(BUILDSPEC_PROMOTE) if inv.words[0] == "promote"]
    applies = [inv for inv in calls if "--yes" in inv.option_names()]
    first_apply = calls.index(applies[0])
    assert all("--plan" in inv.option_names() for inv in calls[:first_apply])
    sources = {inv.value("--from", resolve=False) for inv in calls[:first_apply]}
    assert sources == {"$SOURCE_STAGE", None}
    for inv in calls:
        with_source = inv.value("--from", resolve=False) is not None
        assert ("--source-profile" in inv.option_names()) == with_source, inv.text
    for inv in applies:
        with_source = inv.value("--from", resolve=False) is not None
        assert ("--rollback-on-error" in inv.option_names()) == with_source, inv.text


def _guard_script() -> str:
    """The promote buildspec's pre_build commands up to its promotesFrom check."""
    commands = [c for phase, c in _buildspec_commands(BUILDSPEC_PROMOTE) if phase == "pre_build"]
    end = next(i for i, c in enumerate(commands) if "promotes_from" in c)
    return "\n".join(commands[: end + 1])


@pytest.mark.skipif(shutil.which("jq") is None, reason="the buildspec's guard needs jq")
@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [("", "dev", True), ("dev", "staging", True), ("", "staging", False), ("dev", "prod", False)],
)
def test_codebuild_promotion_refuses_to_skip_a_stage(
    scratch_project: Path, source: str, target: str, allowed: bool
) -> None:
    env = {
        **os.environ,
        "SOURCE_STAGE": source,
        "TARGET_STAGE": target,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-c", _guard_script()],
        cwd=scratch_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode == 0) == allowed, result.stderr
    if not allowed:
        assert f"{target} promotes from '{STAGES[target].promotes_from}'" in result.stderr


def _pipeline() -> dict[str, Any]:
    """The release pipeline as the Pulumi program deploys it (the stack with delivery.pipeline)."""
    (host,) = [s for s in STAGES.values() if s.config.delivery and s.config.delivery.pipeline]
    return pipeline_definition(
        host,
        STAGES,
        role_arn=f"arn:aws:iam::{host.account_id}:role/placeholder",
        artifact_bucket="placeholder-bucket",
        connection_arn=f"arn:aws:codeconnections:{host.region}:{host.account_id}:connection/x",
        approval_topic_arn=f"arn:aws:sns:{host.region}:{host.account_id}:placeholder",
    )


def test_pipeline_is_a_valid_create_pipeline_request() -> None:
    model = botocore.session.get_session().get_service_model("codepipeline")
    report = ParamValidator().validate(
        _pipeline(), model.operation_model("CreatePipeline").input_shape
    )
    assert not report.has_errors(), report.generate_report()


def test_pipeline_promotes_in_order_with_an_approval_before_every_later_stage() -> None:
    promotions: list[tuple[str, str]] = []
    for stage in _pipeline()["pipeline"]["stages"]:
        approved = False
        for action in sorted(stage["actions"], key=lambda a: a.get("runOrder", 1)):
            kind = action["actionTypeId"]
            if (kind["category"], kind["provider"]) == ("Approval", "Manual"):
                approved = True
            config = action.get("configuration", {})
            if config.get("ProjectName") != "mwaa-elt-promote":
                continue
            variables = {v["name"]: v["value"] for v in json.loads(config["EnvironmentVariables"])}
            target, source = variables["TARGET_STAGE"], variables.get("SOURCE_STAGE", "")
            assert source == (STAGES[target].promotes_from or ""), action["name"]
            assert approved or STAGES[target].promotes_from is None, action["name"]
            promotions.append((source, target))
    assert [target for _, target in promotions] == ORDER


# -- IAM in docs/ci-cd.md -------------------------------------------------------------------------


def test_docs_point_at_the_generated_ci_roles_instead_of_hand_written_iam() -> None:
    """The CI roles are generated (iam_policies) and deployed by the program; the page must not
    carry a copy that drifts from them, and must say where they are shown."""
    text = DOCS.read_text(encoding="utf-8")
    assert '"Statement"' not in text
    assert "mwaa-elt infra policies --stage prod" in text
    assert "mwaa-elt infra preview --stage prod" in text
