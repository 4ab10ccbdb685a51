"""Promotion under S3 faults, injected by a proxy between boto3 and moto's server over HTTP:
errors that botocore retries away, errors that outlast the retries, connections cut
mid-upload, lost responses, and a real promoter process killed between its DAG writes and
its manifest write. After each: no partial DAG is visible, `status` tells the truth, and running
the same command again converges on what a clean promotion leaves."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from fault_proxy import (
    Action,
    Drop,
    FaultProxy,
    Hold,
    LoseResponse,
    internal_error,
    service_unavailable,
    slow_down,
)
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.check import airflow_python
from mwaa_elt.errors import EXIT_EXTERNAL, ConfigError, MwaaEltError
from mwaa_elt.promote.sandbox import Sandbox
from mwaa_elt.promote.status import UNFINISHED
from mwaa_elt.stage import Stage

runner = CliRunner()
PROMOTE = ("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
PIPELINES = ("movielens_emr", "movielens_scifi", "scifi_quality")
DAGS = tuple(f"dags/{name}.py" for name in PIPELINES)
MANIFEST = r"\.mwaa-elt/manifest\.json"
LOCK = r"\.mwaa-elt/lock\.json"
TEMPLATE_CHANGE = "# a template change: every DAG file differs from the live one\n"
# A clean promotion's bucket per scenario, computed once per test process.
_REFERENCES: dict[str, dict[str, bytes]] = {}


def _airflow_pythons() -> dict[str, str] | None:
    try:
        return {f"MWAA_ELT_AIRFLOW{n}_PYTHON": str(airflow_python(n)) for n in (2, 3)}
    except ConfigError:
        return None


AIRFLOW = _airflow_pythons()
needs_airflow = pytest.mark.skipif(AIRFLOW is None, reason="run `make airflow-envs`")


# -- fixtures and helpers ------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """The emulated account behind the proxy, read directly: what S3 really holds."""

    endpoint: str
    s3: Any
    stage: Stage

    def reset(self) -> None:
        """Forget every object; only the dev stage's (versioned) bucket exists."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.s3.create_bucket(
            Bucket=self.stage.source_bucket,
            CreateBucketConfiguration={"LocationConstraint": self.stage.region},
        )
        self.s3.put_bucket_versioning(
            Bucket=self.stage.source_bucket, VersioningConfiguration={"Status": "Enabled"}
        )

    def objects(self) -> dict[str, bytes]:
        """Every current object; the manifest without its times and S3 version ids."""
        found: dict[str, bytes] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.stage.source_bucket)
        for page in pages:
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.stage.source_bucket, Key=item["Key"])
                found[item["Key"]] = body["Body"].read()
        if self.stage.manifest_key in found:
            manifest = json.loads(found[self.stage.manifest_key])
            found[self.stage.manifest_key] = json.dumps(_normalised(manifest)).encode()
        # A history object's key is the hash of releases with their times: key it by the
        # hash of its normalised content instead, so equal histories compare equal.
        prefix = self.stage.history_prefix
        for key in [k for k in found if k.startswith(prefix)]:
            body = json.dumps(_normalised(json.loads(found.pop(key)))).encode()
            pipeline = key[len(prefix) :].split("/")[0]
            found[f"{prefix}{pipeline}/{hashlib.sha256(body).hexdigest()}"] = body
        return found

    def manifest(self) -> bytes | None:
        return self.objects().get(self.stage.manifest_key)

    def dag_versions(self) -> list[tuple[str, bytes]]:
        """Every version ever written under dags/, with its body."""
        versions = []
        pages = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.stage.source_bucket, Prefix=self.stage.dags_prefix
        )
        for page in pages:
            for version in page.get("Versions", []):
                body = self.s3.get_object(
                    Bucket=self.stage.source_bucket,
                    Key=version["Key"],
                    VersionId=version["VersionId"],
                )
                versions.append((version["Key"], body["Body"].read()))
        return versions


def _normalised(value: Any) -> Any:
    # Times and S3 version ids differ from run to run; everything else must be identical.
    if isinstance(value, dict):
        return {
            k: _normalised(v)
            for k, v in sorted(value.items())
            if k not in {"promoted_at", "dag_version_id", "history_key"}
        }
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


@pytest.fixture(scope="module")
def direct_s3(moto_server: Sandbox) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    ).client("s3", endpoint_url=moto_server.endpoint_url)


@pytest.fixture
def account(
    moto_server: Sandbox, direct_s3: Any, dev: Stage, monkeypatch: pytest.MonkeyPatch
) -> Account:
    """A fresh emulated account; mwaa-elt's credentials for it."""
    assert dev.region == "eu-west-1"
    emulated = Account(moto_server.endpoint_url, direct_s3, dev)
    emulated.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return emulated


@pytest.fixture
def proxy(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of the account; mwaa-elt talks to the proxy."""
    with FaultProxy(account.endpoint) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


@pytest.fixture
def project(
    scratch_project: Path, project_root: Path, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the project's pipelines and templates; in-process runs skip the DagBag gate
    (seconds of Airflow start-up) — the subprocess tests run the real one."""
    for folder in ("pipelines", "dag_templates", "infra/environment"):
        shutil.copytree(project_root / folder, scratch_project / folder)
    for name, value in (AIRFLOW or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(scratch_project)
    from mwaa_elt.promote import gates

    monkeypatch.setattr(gates, "dagbag_gate", lambda *args: None)
    return scratch_project


def mwaa(*args: str) -> tuple[int, str]:
    """Run the CLI in-process as a user would: exit code and everything it printed."""
    result = runner.invoke(cli.app, list(args))
    if isinstance(result.exception, MwaaEltError):
        return result.exception.exit_code, result.output + "\n".join(result.exception.messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def one_line(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the terminal width


def status() -> dict[str, Any]:
    result = runner.invoke(cli.app, ["status", "--stage", "dev", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def drift(report: dict[str, Any]) -> dict[str, str]:
    return {p["pipeline"]: p["drift"] for p in report["pipelines"]}


def set_templates(project: Path, *, changed: bool) -> None:
    """The project's templates as checked in, or with a change that alters every DAG file."""
    template = project / "dag_templates/dag.py.j2"
    text = template.read_text().removeprefix(TEMPLATE_CHANGE)
    template.write_text(TEMPLATE_CHANGE + text if changed else text)


def reference(scenario: str, project: Path, account: Account) -> dict[str, bytes]:
    """The bucket a clean run of `scenario` leaves: `first` promotes the checked-in templates
    into an empty stage, `update` then promotes a template change over them."""
    if scenario not in _REFERENCES:
        account.reset()
        set_templates(project, changed=False)
        assert mwaa(*PROMOTE)[0] == 0
        if scenario == "update":
            set_templates(project, changed=True)
            assert mwaa(*PROMOTE)[0] == 0
        _REFERENCES[scenario] = account.objects()
        account.reset()
        set_templates(project, changed=False)
    return _REFERENCES[scenario]


def start(scenario: str, project: Path, account: Account) -> dict[str, bytes]:
    """Bring the stage to where `scenario`'s last promotion starts; the bucket then."""
    if scenario == "update":
        assert mwaa(*PROMOTE)[0] == 0
        set_templates(project, changed=True)
    return account.objects()


def assert_no_partial_dag(account: Account, *states: dict[str, bytes]) -> None:
    """Every DAG object version S3 ever held is one complete file of one of `states`."""
    complete = {key: {state[key] for state in states} for key in DAGS}
    for key, body in account.dag_versions():
        assert body in complete[key], f"{key}: a version holds {len(body)} bytes of no render"


def assert_in_sync(report: dict[str, Any]) -> None:
    """`status` of a stage a promotion completed: every pipeline recorded and in sync."""
    assert drift(report) == dict.fromkeys(PIPELINES, "in sync")
    assert report["unfinished_dags"] == [] and report["unmanaged_dags"] == []
    assert report["lock"] is None


# -- transient faults: botocore's standard retries absorb them ------------------------------


def test_transient_faults_on_every_kind_of_write_are_retried_to_a_clean_promotion(
    project, proxy, account
):
    clean = reference("first", project, account)
    proxy.add("GET", MANIFEST, internal_error())
    proxy.add("PUT", LOCK, slow_down(retry_after_ms=50))
    proxy.add("PUT", r"scripts/.*", internal_error(), times=2)
    proxy.add("PUT", r"\.mwaa-elt/bundles/.*", service_unavailable())
    proxy.add("PUT", r"dags/movielens_emr\.py", slow_down(retry_after_ms=50), times=2)
    proxy.add("PUT", r"dags/movielens_scifi\.py", Drop(after_bytes=1024))
    proxy.add("PUT", r"dags/scifi_quality\.py", LoseResponse())
    proxy.add("PUT", MANIFEST, service_unavailable())
    proxy.add("PUT", MANIFEST, slow_down(retry_after_ms=50))

    code, output = mwaa(*PROMOTE)

    assert code == 0, output
    assert [rule.fired for rule in proxy.rules] == [rule.times for rule in proxy.rules]
    for key in DAGS:  # each DAG file was sent again after its fault, and S3 took it
        assert proxy.seen("PUT", key)[-1].outcome == "forwarded 200"
    assert account.objects() == clean
    assert_no_partial_dag(account, clean)
    assert_in_sync(status())


# -- faults that outlast the retries: exit 3, a truthful state, and a re-run converges -------


@dataclass(frozen=True)
class Persistent:
    """A fault on every attempt of one write, and what the user must be told and shown."""

    scenario: str  # "first": into an empty stage; "update": every DAG changes over a live one
    key: str
    fault: Action
    error: str  # what the message says of the AWS failure
    state: str  # what the message says the stage is left in
    drift: dict[str, str]  # `status` per pipeline afterwards


PART_WAY = "stage dev is part-way: this promotion already wrote "
NOT_RECORDED = ", which the manifest does not record yet; run the same command again"
# DAG files are written in parallel: while one keeps failing, the others land.
OTHERS_WRITTEN = {
    "movielens_emr": UNFINISHED,
    "movielens_scifi": "in sync",
    "scifi_quality": UNFINISHED,
}
PERSISTENT = {
    "script 500": Persistent(
        "first",
        r"scripts/movielens_emr/.*",
        internal_error(),
        "(InternalError) when calling the PutObject operation",
        "stage dev is as it was: no DAG file changed and the manifest records what is live; "
        "run the same command again",
        {},
    ),
    "one DAG 503": Persistent(
        "update",
        r"dags/movielens_scifi\.py",
        service_unavailable(),
        "(ServiceUnavailable) when calling the PutObject operation",
        PART_WAY + "dags/movielens_emr.py, dags/scifi_quality.py" + NOT_RECORDED,
        OTHERS_WRITTEN,
    ),
    "DAG upload cut mid-body": Persistent(
        "update",
        r"dags/movielens_scifi\.py",
        Drop(after_bytes=2048),
        "Connection was closed before we received a valid response",
        PART_WAY + "dags/movielens_emr.py, dags/scifi_quality.py" + NOT_RECORDED,
        OTHERS_WRITTEN,
    ),
    "manifest 500": Persistent(
        "update",
        MANIFEST,
        internal_error(),
        "writing manifest s3://airflow-mwaa-elt-dev-111111111111/.mwaa-elt/manifest.json failed",
        PART_WAY + ", ".join(DAGS) + NOT_RECORDED,
        dict.fromkeys(PIPELINES, UNFINISHED),
    ),
}


@pytest.mark.parametrize("case", list(PERSISTENT))
def test_a_fault_outlasting_the_retries_exits_3_truthfully_and_a_rerun_converges(
    case, project, proxy, account
):
    fault = PERSISTENT[case]
    first = reference("first", project, account)
    clean = reference(fault.scenario, project, account)
    before = start(fault.scenario, project, account)
    proxy.add("PUT", fault.key, fault.fault, times=None)

    code, output = mwaa(*PROMOTE)

    assert code == EXIT_EXTERNAL, output
    assert len(proxy.seen("PUT", fault.key)) >= 5  # botocore's standard retries were used
    assert "Traceback" not in output
    assert fault.error in one_line(output) and fault.state in one_line(output)
    assert account.manifest() == before.get(account.stage.manifest_key)
    assert_no_partial_dag(account, first, clean)
    report = status()
    assert drift(report) == fault.drift
    assert report["unfinished_dags"] == [] and report["unmanaged_dags"] == []
    assert report["lock"] is None  # released on the way out

    proxy.clear()
    code, output = mwaa(*PROMOTE)
    assert code == 0, output
    assert account.objects() == clean
    assert_no_partial_dag(account, first, clean)
    assert_in_sync(status())


# -- lost responses: the write landed, the answer did not ----------------------------------


def test_a_lost_response_to_the_manifest_write_is_not_mistaken_for_a_conflict(
    project, proxy, account
):
    """botocore retries the conditional write, and the retry fails the very condition the
    first attempt met: that must not read as someone else's change."""
    clean = reference("first", project, account)
    proxy.add("PUT", MANIFEST, LoseResponse())
    code, output = mwaa(*PROMOTE)
    assert code == 0, output
    outcomes = [exchange.outcome for exchange in proxy.seen("PUT", MANIFEST)]
    assert outcomes == ["forwarded, response lost", "forwarded 412"]
    assert account.objects() == clean
    assert_in_sync(status())


def test_a_lost_response_to_the_lock_write_does_not_lock_out_its_own_promotion(
    project, proxy, account
):
    clean = reference("first", project, account)
    proxy.add("PUT", LOCK, LoseResponse())
    code, output = mwaa(*PROMOTE)
    assert code == 0, output
    assert account.objects() == clean


def test_an_outage_at_the_manifest_write_reports_the_manifest_not_the_lock_release(
    project, proxy, account
):
    proxy.add("PUT", MANIFEST, internal_error(), times=None)
    proxy.add("GET", LOCK, internal_error(), times=None)
    proxy.add("DELETE", LOCK, internal_error(), times=None)
    code, output = mwaa(*PROMOTE)
    assert code == EXIT_EXTERNAL
    assert "writing manifest" in one_line(output), output
    assert PART_WAY + ", ".join(DAGS) + NOT_RECORDED in one_line(output)
    proxy.clear()  # S3 is back: the lock the failed release left names the promoter
    assert status()["lock"]["pid"] == os.getpid()


# -- a real promoter process killed between its DAG writes and its manifest write -------------


def _spawn_promoter(project: Path, proxy: FaultProxy, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, **(AIRFLOW or {})}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("mwaa-elt")), *PROMOTE],
            cwd=project,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_held(hold: Hold, promoter: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240  # rendering and the DagBag gate, on a loaded machine
    while not hold.wait_arrived(0.1):
        if promoter.poll() is not None:
            pytest.fail(f"the promoter exited ({promoter.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the promoter never reached its manifest write:\n{log.read_text()}")


@needs_airflow
@pytest.mark.parametrize(
    ("scenario", "sig"),
    [("update", signal.SIGKILL), ("first", signal.SIGTERM)],
    ids=["SIGKILL over live DAGs", "SIGTERM into an empty stage"],
)
def test_a_promoter_killed_before_its_manifest_write_is_completed_by_running_it_again(
    scenario, sig, project, proxy, account, tmp_path
):
    first = reference("first", project, account)
    clean = reference(scenario, project, account)
    before = start(scenario, project, account)
    hold = Hold()
    proxy.add("PUT", MANIFEST, hold, times=None)
    log = tmp_path / "promoter.log"
    promoter = _spawn_promoter(project, proxy, log)
    try:
        _wait_held(hold, promoter, log)
        # Paused right before its manifest write: every DAG file is the new one, complete.
        paused = account.objects()
        assert {key: paused[key] for key in DAGS} == {key: clean[key] for key in DAGS}
        assert paused.get(account.stage.manifest_key) == before.get(account.stage.manifest_key)
        promoter.send_signal(sig)
        assert promoter.wait(timeout=30) == -sig
    finally:
        if promoter.poll() is None:
            promoter.kill()
            promoter.wait(timeout=30)
        hold.release(forward=False)  # the dead process's request never reaches S3

    assert account.manifest() == before.get(account.stage.manifest_key)
    assert_no_partial_dag(account, first, clean)
    report = status()
    assert report["lock"] is not None  # the dead promoter's, left behind
    assert (report["lock"]["pid"], report["lock"]["host"]) == (promoter.pid, socket.gethostname())
    if scenario == "update":
        assert drift(report) == dict.fromkeys(PIPELINES, UNFINISHED)
        assert report["unfinished_dags"] == []
    else:
        assert report["pipelines"] == [] and report["unfinished_dags"] == list(DAGS)
    assert report["unmanaged_dags"] == []

    proxy.clear()
    code, output = mwaa(*PROMOTE)  # the same command, on the same host: no --force-unlock
    assert code == 0, output
    holder = f"moto on {socket.gethostname()} (pid {promoter.pid})"
    assert f"took over a stale lock of arn:aws:sts::123456789012:user/{holder}" in one_line(output)
    assert account.objects() == clean
    assert_no_partial_dag(account, first, clean)
    assert_in_sync(status())
