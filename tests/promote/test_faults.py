"""Promotion under S3 faults, injected by a proxy between boto3 and moto's server over HTTP:
errors that botocore retries away, errors that outlast the retries, connections cut
mid-upload, lost responses, and a real promoter process killed between its DAG writes and
its manifest write. After each: no partial DAG is visible, `status` tells the truth, and running
the same command again converges on what a clean promotion leaves."""

from __future__ import annotations

import hashlib
import json
import os
import re
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
from airflow_lines import environment_overrides
from fault_proxy import (
    Action,
    Drop,
    FaultProxy,
    Hold,
    LoseResponse,
    Truncate,
    internal_error,
    service_unavailable,
    slow_down,
)
from typer.testing import CliRunner

from mwaa_elt import aws, cli
from mwaa_elt.errors import EXIT_EXTERNAL, MwaaEltError
from mwaa_elt.promote import phases
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
    for name, value in environment_overrides().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(scratch_project)
    from mwaa_elt.promote import gates

    monkeypatch.setattr(gates, "dagbag_gate", lambda *args: None)
    monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)
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
    "source pack 500": Persistent(
        "first",
        r"\.mwaa-elt/bundles/packs/.*",  # the first promotion's bundles, all in one pack
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
        "s3:PutObject s3://airflow-mwaa-elt-dev-111111111111/.mwaa-elt/manifest.json failed "
        "after retries (AWS kept answering with a server error)",
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
    assert (
        "s3:PutObject s3://airflow-mwaa-elt-dev-111111111111/.mwaa-elt/manifest.json failed"
        in (one_line(output).split("the stage lock could not be released")[0])
    ), output
    assert PART_WAY + ", ".join(DAGS) + NOT_RECORDED in one_line(output)
    proxy.clear()  # S3 is back: the lock the failed release left names the promoter
    assert status()["lock"]["pid"] == os.getpid()


# -- a real promoter process killed between its DAG writes and its manifest write -------------


def _spawn_promoter(
    project: Path,
    proxy: FaultProxy | str,
    log: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    endpoint = proxy if isinstance(proxy, str) else proxy.url
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, **environment_overrides(), **(env or {})}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("mwaa-elt")), *PROMOTE, *args],
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


# -- cut-off answers, sustained throttling: one policy, exit 3 naming the call (#16) ---------

STS = ""  # STS is a POST to the service root: no bucket, no key
CUT_XML = Truncate(body_bytes=191, consistent=True)  # a complete-looking answer, cut mid-XML
CUT_BODY = Truncate(body_bytes=100)  # the full length promised, then the connection closed
CUT_HEADERS = Truncate(body_bytes=None)  # the write landed; its answer stopped after a line


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """mwaa-elt's own retries without their waits (botocore's keep theirs)."""
    monkeypatch.setattr(aws, "POLICY", aws.RetryPolicy(base_seconds=0.001))


@pytest.mark.parametrize(
    ("method", "key", "fault"),
    [
        ("POST", STS, CUT_XML),
        ("GET", MANIFEST, CUT_BODY),
        ("GET", LOCK, CUT_BODY),
        ("PUT", r"dags/movielens_scifi\.py", CUT_HEADERS),
        ("PUT", MANIFEST, CUT_HEADERS),
    ],
    ids=[
        "STS answer",
        "manifest read",
        "lock read",
        "DAG write's answer",
        "manifest write's answer",
    ],
)
def test_a_cut_off_answer_to_any_kind_of_call_is_retried_to_a_clean_promotion(
    method, key, fault, project, proxy, account
):
    clean = reference("update", project, account)
    start("update", project, account)
    rule = proxy.add(method, key, fault)

    code, output = mwaa(*PROMOTE)

    assert code == 0, output
    assert rule.fired == 1, [e.outcome for e in proxy.exchanges]
    assert account.objects() == clean
    assert_in_sync(status())


@pytest.mark.parametrize(
    ("method", "key", "fault", "call", "kind"),
    [
        ("POST", STS, CUT_XML, "sts:GetCallerIdentity", "the response kept arriving cut off"),
        ("POST", STS, slow_down(), "sts:GetCallerIdentity", "AWS kept throttling it"),
        (
            "GET",
            MANIFEST,
            CUT_BODY,
            "s3:GetObject s3://airflow-mwaa-elt-dev-111111111111/.mwaa-elt/manifest.json",
            "the response kept arriving cut off",
        ),
    ],
    ids=["STS answer cut", "STS 503 SlowDown", "manifest read cut"],
)
def test_a_fault_on_a_read_before_any_write_exits_3_naming_the_call_not_the_credentials(
    method, key, fault, call, kind, project, proxy, account, fast_retries
):
    before = start("update", project, account)
    proxy.clear()  # count only this run's requests
    proxy.add(method, key, fault, times=None)

    code, output = mwaa(*PROMOTE)

    text = one_line(output)
    assert code == EXIT_EXTERNAL, output
    assert f"{call}" in text and f"failed after retries ({kind}" in text, text
    assert "check your credentials" not in text and "Traceback" not in text
    assert len(proxy.seen(method, key)) == 5  # the policy's attempts, not more, not fewer
    assert account.objects() == before  # nothing was written

    proxy.clear()
    code, output = mwaa(*PROMOTE)
    assert code == 0, output
    assert_in_sync(status())


def test_a_dag_write_whose_answer_is_always_cut_exits_3_and_a_rerun_converges(
    project, proxy, account
):
    first = reference("first", project, account)
    clean = reference("update", project, account)
    start("update", project, account)
    proxy.clear()  # count only this run's requests
    key = r"dags/movielens_scifi\.py"
    proxy.add("PUT", key, CUT_HEADERS, times=None)

    code, output = mwaa(*PROMOTE)

    text = one_line(output)
    assert code == EXIT_EXTERNAL, output
    assert "s3:PutObject s3://airflow-mwaa-elt-dev-111111111111/dags/movielens_scifi.py" in text
    assert "failed after retries (the connection kept failing)" in text
    assert PART_WAY in text
    assert len(proxy.seen("PUT", key)) == 5
    assert_no_partial_dag(account, first, clean)

    proxy.clear()
    code, output = mwaa(*PROMOTE)
    assert code == 0, output
    assert account.objects() == clean
    assert_in_sync(status())


# -- the lock fences every write; any interruption converges with one re-run (#15) ----------


@pytest.mark.parametrize("point", phases.POINTS)
def test_a_promoter_sigkilled_at_any_phase_is_converged_by_one_rerun(
    point, project, proxy, account, tmp_path
):
    first = reference("first", project, account)
    clean = reference("update", project, account)
    start("update", project, account)
    log = tmp_path / "promoter.log"
    promoter = _spawn_promoter(project, proxy, log, env={"MWAA_ELT_KILL_AT": point})
    try:
        assert promoter.wait(timeout=300) == -signal.SIGKILL, log.read_text()
    finally:
        if promoter.poll() is None:
            promoter.kill()
            promoter.wait(timeout=30)
    assert_no_partial_dag(account, first, clean)
    assert status()["lock"]["pid"] == promoter.pid  # it died holding the lock

    code, output = mwaa(*PROMOTE)  # the same command, once

    assert code == 0, output
    assert account.objects() == clean
    assert_in_sync(status())


def _wait_stopped(process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `process` stopped itself (SIGSTOP at a phase point)."""
    deadline = time.monotonic() + 240  # rendering and the DagBag gate, on a loaded machine
    while Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1][0] != "T":
        if process.poll() is not None:
            pytest.fail(f"the promoter exited ({process.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the promoter never paused:\n{log.read_text()}")
        time.sleep(0.1)


def test_a_promotion_whose_lock_is_broken_mid_write_writes_nothing_once_it_knows(
    project, proxy, account, tmp_path, tmp_path_factory
):
    """Two real processes. A promotes a template change through the proxy and is paused (every
    thread, its heartbeat too) between its first writes (the template snapshot) and its DAG
    files; B, another change in another checkout, breaks A's live lock with --force-unlock --yes
    and completes. A then resumes: it must write nothing once its fence fails, exit 1 saying
    why, and one re-run of A's command must leave `status` clean."""
    first = reference("first", project, account)
    clean = reference("update", project, account)
    start("update", project, account)  # A's change: the template change over a live stage
    other = tmp_path_factory.mktemp("other-checkout")
    shutil.copytree(project, other, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.log"))
    template = other / "dag_templates/dag.py.j2"
    template.write_text("# another change, promoted by B\n" + template.read_text())
    proxy.clear()
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = _spawn_promoter(project, proxy, a_log, env={"MWAA_ELT_PAUSE_AT": "uploaded"})
    try:
        _wait_stopped(a, a_log)
        assert proxy.seen("PUT", rf"{re.escape(account.stage.templates_prefix)}.*")
        b = _spawn_promoter(other, account.endpoint, b_log, "--force-unlock")  # not proxied
        assert b.wait(timeout=300) == 0, b_log.read_text()
        assert "that holder is alive" in one_line(b_log.read_text())
        by_b = account.objects()
        a.send_signal(signal.SIGCONT)
        assert a.wait(timeout=120) == 1, a_log.read_text()
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(timeout=30)
    assert "broken by someone else" in one_line(a_log.read_text())
    learned = min(
        e.ended
        for e in proxy.exchanges
        if re.fullmatch(LOCK, e.key) and e.outcome in {"forwarded 404", "forwarded 412"}
    )
    lock_key = re.compile(LOCK)
    after = [
        e
        for e in proxy.exchanges
        if e.method in {"PUT", "DELETE", "POST"} and e.arrived >= learned
        and not lock_key.fullmatch(e.key)
    ]  # fmt: skip
    assert after == [], "A wrote after it learned that its lock was broken"
    assert proxy.seen("PUT", r"dags/.*") == []  # A never reached its DAG files
    assert account.objects() == by_b  # B's promotion is what is live, intact
    assert status()["drifted"] == []

    code, output = mwaa(*PROMOTE)  # A's command, once

    assert code == 0, output
    objects = account.objects()
    assert {key: objects[key] for key in DAGS} == {key: clean[key] for key in DAGS}
    assert_no_partial_dag(account, first, clean, by_b)
    assert_in_sync(status())
