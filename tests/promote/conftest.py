"""A moto server per test session (per xdist worker), reset before each test that uses it."""

from __future__ import annotations

import pytest
from promote_support import Recorder

from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage


@pytest.fixture
def dev(stages: dict[str, Stage]) -> Stage:
    return stages["dev"]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store(endpoint: str, dev: Stage, recorder: Recorder) -> StageStore:
    client = make_client("s3", dev.region)
    client.meta.events.register("provide-client-params.s3", recorder)
    return StageStore(dev, client)
