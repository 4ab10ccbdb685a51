"""The in-place upgrade sequence: refused unless the stack file names the target, steps in
order, stopped at the first failure with what was done; the wait reads GetEnvironment through
a Stubber-checked MWAA client."""

from __future__ import annotations

import pytest
from airflow_fake import FakeAirflow, StubbedMwaa

from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.lifecycle.upgrade import (
    BackupMetadata,
    CheckImportErrors,
    RepromoteLive,
    UpgradeStopped,
    WaitForVersion,
    execute_upgrade,
    explain_upgrade,
    failing_imports,
    plan_upgrade,
    read_environment,
    wait_for_version,
)
from mwaa_elt.promote.manifest import Manifest, PipelineRecord
from mwaa_elt.stage import Stage


def _record(name: str, version: str | None) -> PipelineRecord:
    return PipelineRecord(
        source_hash="s" * 64,
        rendered_hash="r" * 64,
        bundle_key=f".mwaa-elt/bundles/{name}.tar.gz",
        templates_hash="t" * 64,
        templates_key=".mwaa-elt/templates/t.tar.gz",
        dag_key=f"dags/{name}.py",
        promoted_from="working-tree",
        promoted_at="2026-01-01T00:00:00+00:00",
        promoted_by="arn:aws:iam::123456789012:user/ci",
        tool_version="0.1.0",
        airflow_version=version,
    )


MANIFEST = Manifest(
    stage="dev",
    pipelines={
        "movielens_scifi": _record("movielens_scifi", "2.11.0"),
        "old": _record("old", None),
    },
)


class Recorded:
    """Actions that record their order and fail where told."""

    def __init__(self, fail: str | None = None, error: Exception | None = None) -> None:
        self.order: list[str] = []
        self.fail = fail
        self.error = error or ConfigError("it broke")

    def _do(self, name: str) -> str:
        self.order.append(name)
        if name == self.fail:
            raise self.error
        return f"{name} ok"

    def backup(self, step: BackupMetadata) -> str:
        return self._do("backup")

    def wait(self, step: WaitForVersion) -> str:
        return self._do("wait")

    def repromote(self, step: RepromoteLive) -> str:
        return self._do("repromote")

    def check_import_errors(self, step: CheckImportErrors) -> str:
        return self._do("check")


def test_the_upgrade_is_refused_until_the_stack_file_names_the_target(
    stages: dict[str, Stage],
) -> None:
    with pytest.raises(ConfigError, match=r"Pulumi.dev.yaml: mwaa-elt:airflowVersion is 3.0.6, not 3.2.1.*pulumi up --stack dev"):  # fmt: skip
        plan_upgrade(stages["dev"], "3.2.1", MANIFEST, "b1", timeout_seconds=60)
    with pytest.raises(ConfigError, match=r"MWAA offers no Airflow 9.9.9"):
        plan_upgrade(stages["dev"], "9.9.9", MANIFEST, "b1", timeout_seconds=60)


def test_the_upgrade_runs_backup_wait_repromote_check_in_that_order(
    stages: dict[str, Stage],
) -> None:
    plan = plan_upgrade(stages["dev"], "3.0.6", MANIFEST, "b1", timeout_seconds=60)
    actions = Recorded()
    result = execute_upgrade(plan, actions)
    assert actions.order == ["backup", "wait", "repromote", "check"]
    assert [said for _, said in result.done] == ["backup ok", "wait ok", "repromote ok", "check ok"]
    text = "\n".join(explain_upgrade(plan))
    assert "movielens_scifi: rendered for Airflow 2.11.0 now" in text
    assert "old: rendered for Airflow unrecorded now" in text


@pytest.mark.parametrize(
    ("fail", "exit_code", "done"),
    [
        ("backup", 1, []),
        ("wait", 1, ["backup"]),
        ("repromote", 3, ["backup", "wait"]),
        ("check", 1, ["backup", "wait", "repromote"]),
    ],
)
def test_the_upgrade_stops_at_the_first_failing_step_and_says_what_was_done(
    stages: dict[str, Stage], fail: str, exit_code: int, done: list[str]
) -> None:
    plan = plan_upgrade(stages["dev"], "3.0.6", MANIFEST, "b1", timeout_seconds=60)
    error = ExternalError("s3 down") if exit_code == 3 else ConfigError("it broke")
    actions = Recorded(fail, error)
    with pytest.raises(UpgradeStopped) as stopped:
        execute_upgrade(plan, actions)
    assert actions.order == [*done, fail]
    assert stopped.value.exit_code == exit_code
    message = "\n".join(stopped.value.messages)
    index = len(done) + 1
    assert f"stopped at step {index}/4" in message
    if done:
        assert "the metadata is in backup b1" in message
    else:
        assert "done: nothing" in message and "the metadata is in backup" not in message


def test_waiting_polls_get_environment_until_available_on_the_target(
    stages: dict[str, Stage],
) -> None:
    env = FakeAirflow(3, status="UPDATING", version="2.11.0")
    mwaa = StubbedMwaa({"e": env})
    polls = iter([("UPDATING", "2.11.0"), ("CREATING_SNAPSHOT", "2.11.0"), ("AVAILABLE", "3.0.6")])
    clock = iter(range(0, 1000, 30))

    def read() -> object:
        env.status, env.version = next(polls)
        return read_environment(mwaa, "e", "eu-west-1")

    seen: list[str] = []
    state = wait_for_version(
        read,  # type: ignore[arg-type]
        WaitForVersion("e", "3.0.6", 600),
        sleep=lambda _: None,
        clock=lambda: float(next(clock)),
        seen=lambda s, _: seen.append(s.status),
    )
    assert state.version == "3.0.6" and seen == ["UPDATING", "CREATING_SNAPSHOT", "AVAILABLE"]


def test_waiting_stops_on_a_failed_update_and_on_timeout(stages: dict[str, Stage]) -> None:
    from mwaa_elt.lifecycle.upgrade import EnvironmentState

    failed = EnvironmentState("AVAILABLE", "2.11.0", "FAILED", "requirements.txt conflict")
    with pytest.raises(ConfigError, match=r"last update FAILED: requirements.txt conflict"):
        wait_for_version(lambda: failed, WaitForVersion("e", "3.0.6", 600), sleep=lambda _: None)
    old = EnvironmentState("AVAILABLE", "2.11.0", "SUCCESS", None)
    clock = iter([0.0, 0.0, 700.0])
    with pytest.raises(ConfigError, match=r"still AVAILABLE on Airflow 2.11.0 after 700 s"):
        wait_for_version(
            lambda: old,
            WaitForVersion("e", "3.0.6", 600),
            sleep=lambda _: None,
            clock=lambda: next(clock),
        )


def test_import_errors_are_matched_to_live_pipelines_by_file_name() -> None:
    errors = [
        ("/usr/local/airflow/dags/movielens_scifi.py", "ImportError: airflow.datasets"),
        ("/usr/local/airflow/dags/someone_elses.py", "SyntaxError"),
    ]
    assert failing_imports(errors, ["movielens_scifi", "old"]) == {
        "movielens_scifi": "ImportError: airflow.datasets"
    }
