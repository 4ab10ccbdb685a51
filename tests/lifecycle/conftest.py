"""A moto server for the lifecycle tests' S3 (per xdist worker), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mwaa_elt.promote.sandbox import Sandbox, create_stage_buckets, sandbox
from mwaa_elt.stage import Stage


@pytest.fixture(scope="session")
def moto_server(stages: dict[str, Stage]) -> Iterator[Sandbox]:
    with sandbox(stages) as running:
        yield running


@pytest.fixture
def endpoint(
    moto_server: Sandbox, stages: dict[str, Stage], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh emulated account: every stage's bucket exists and is empty."""
    requests.post(f"{moto_server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    create_stage_buckets(moto_server.endpoint_url, stages)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server.endpoint_url
