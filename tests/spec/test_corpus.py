"""The corpus of broken pipelines: each must be stopped by validation before anything is written.

Every case is a folder `tests/spec/corpus/<case>/` holding a `pipelines/` tree and `expect.yaml`:

    stage: dev                          # the stage render is asked for (default dev)
    file: pipelines/x/sql/load.sql      # the file the problem must name, relative to the case
    line: 3                             # the line it must name
    contains: "looks like a secret"     # a substring of its message
    # What git cannot hold is made by the harness (each a mapping or a list of them):
    symlink: {path: pipelines/x/passwd, target: /etc/passwd}
    fifo: {path: pipelines/x/pipe}
    fill: {path: pipelines/x/sql/big.sql, bytes: 900000, head: "SELECT 1\\n"}

For every case: `mwaa-elt validate` exits 1 without a traceback and names file:line with the
message (text and --format json); `render` writes nothing; `promote --to dev` against the
sandbox (moto on loopback, one server for the whole session) writes no object version — not
even the lock.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.errors import MwaaEltError
from mwaa_elt.stage import Stage

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.yaml").is_file())
runner = CliRunner()


@dataclass(frozen=True)
class Expect:
    """What one case must produce, and what the harness creates before running it."""

    stage: str
    file: str
    line: int
    contains: str
    make: dict[str, list[dict[str, Any]]]

    @classmethod
    def load(cls, case: Path) -> Expect:
        raw = yaml.safe_load((case / "expect.yaml").read_text())
        make = {}
        for key in ("symlink", "fifo", "fill"):
            value = raw.get(key) or []
            make[key] = value if isinstance(value, list) else [value]
        return cls(
            stage=raw.get("stage", "dev"),
            file=raw["file"],
            line=int(raw["line"]),
            contains=str(raw["contains"]),
            make=make,
        )


def materialize(case: str, project: Path) -> Expect:
    """Copy the case's pipelines into `project` and create its links, FIFOs and large files."""
    source = CORPUS / case
    expect = Expect.load(source)
    shutil.copytree(source / "pipelines", project / "pipelines", symlinks=True)
    for link in expect.make["symlink"]:
        path = project / link["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(link["target"])
    for fifo in expect.make["fifo"]:
        path = project / fifo["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
    for fill in expect.make["fill"]:
        path = project / fill["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        head = fill.get("head", "").encode()
        padding = b"-- a comment line of plain words, as long SQL files carry them\n"
        count = max(0, int(fill["bytes"]) - len(head)) // len(padding) + 1
        path.write_bytes(head + padding * count)
    return expect


@dataclass(frozen=True)
class Account:
    """The sandbox's endpoint and an S3 client per stage bucket, made once per session."""

    endpoint_url: str
    clients: dict[str, Any]  # bucket -> client


@pytest.fixture(scope="session")
def account(stages: dict[str, Stage]) -> Iterator[Account]:
    """One moto server for every case of the session (per xdist worker)."""
    import boto3

    from mwaa_elt.promote.sandbox import sandbox

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    with sandbox(stages) as running:
        clients = {
            stage.source_bucket: session.client(
                "s3", region_name=stage.region, endpoint_url=running.endpoint_url
            )
            for stage in stages.values()
        }
        yield Account(running.endpoint_url, clients)


def object_versions(account: Account) -> list[str]:
    """Every object version and delete marker in every stage's bucket."""
    found = []
    for bucket, s3 in account.clients.items():
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                found.append(f"s3://{bucket}/{item['Key']}")
    return found


@pytest.fixture
def project(tmp_path: Path, account: Account, stages, monkeypatch) -> Path:
    """A scratch project (stacks, templates, environment files) on an empty sandbox account."""
    from mwaa_elt.promote.sandbox import create_stage_buckets

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for folder in ("stacks", "dag_templates", "infra/environment"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    if object_versions(account):  # only after a case that failed by writing something
        requests.post(f"{account.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        create_stage_buckets(account.endpoint_url, stages)
    monkeypatch.setenv("AWS_ENDPOINT_URL", account.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("MWAA_ELT_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    from mwaa_elt.promote import gates

    def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a broken pipeline reached the promotion gates")

    monkeypatch.setattr(gates, "dagbag_gate", unreachable)
    monkeypatch.setattr(gates, "start_dagbag_gate", lambda *args: None)
    monkeypatch.setattr(gates, "requirements_gate", unreachable, raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    """The CLI as a user runs it; a traceback (any exception but ours) fails the test."""
    result = runner.invoke(cli.app, list(args))
    output = result.output
    if isinstance(result.exception, MwaaEltError):
        return result.exception.exit_code, output + "\n".join(result.exception.messages)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"mwaa-elt {' '.join(args)} raised {result.exception!r}")
    assert "Traceback" not in output
    return result.exit_code, output


def tree(root: Path) -> dict[str, int]:
    """Every path under `root` with its size (links and FIFOs by lstat, never opened)."""
    return {
        str(path.relative_to(root)): path.lstat().st_size
        for path in root.rglob("*")
        if "__pycache__" not in path.parts
    }


def test_the_corpus_has_a_case_for_each_kind_of_breakage() -> None:
    assert len(CASES) >= 13, CASES


@pytest.mark.parametrize("case", CASES)
def test_a_broken_pipeline_is_refused_before_anything_is_written(
    case: str, project: Path, account: Account
) -> None:
    expect = materialize(case, project)
    assert (project / expect.file).exists() or (project / expect.file).is_symlink(), expect.file

    code, text = run("validate")
    assert code == 1, text
    located = f"{expect.file}:{expect.line}:"
    lines = [line for line in text.splitlines() if line.startswith(located)]
    assert lines, f"no problem at {located} in:\n{text}"
    assert any(expect.contains in line for line in lines), text

    code, raw = run("validate", "--format", "json")
    assert code == 1
    report = json.loads(raw[raw.index("{") :])
    problems = [p for f in report["files"] for p in f["problems"]]
    assert any(
        p["file"] == expect.file and p["line"] == expect.line and expect.contains in p["message"]
        for p in problems
    ), problems

    before = tree(project)
    code, text = run("render", "--stage", expect.stage)
    assert code == 1, text
    assert tree(project) == before, "render wrote something"

    assert object_versions(account) == []
    code, text = run("promote", "--to", "dev", "--yes", "--skip-mwaa-checks")
    assert code == 1, text
    assert object_versions(account) == [], "promote wrote into a stage's bucket"
    assert tree(project) == before, "promote wrote something"
