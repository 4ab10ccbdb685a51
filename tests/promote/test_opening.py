"""The opening of a promotion: the route is checked before AWS is called, who is promoting before
anything of the stage is read, and the DAG prefix's listing is on the wire when it returns."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.project import Project, find_project
from mwaa_elt.promote import identity, opening
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.opening import PromoteRequest, open_promotion
from mwaa_elt.promote.store import StageStore, store_client

LISTING_PREPARED_SECONDS = 0.1
UNUSED_LISTING_SECONDS = 1.0


class Wire:
    """What reached the wire, in order: STS checks and the stage store's S3 requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[str] = []

    def add(self, what: str) -> None:
        with self.lock:
            self.sent.append(what)

    def store_client(self, region: str, *, profile: str | None = None) -> Any:
        client = store_client(region, profile=profile)
        for operation in ("ListObjectsV2", "GetObject"):
            # First among the handlers of the operation's own event: before the opening's.
            client.meta.events.register_first(
                f"before-send.s3.{operation}", lambda _name=operation, **_: self.add(_name)
            )
        return client


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> Wire:
    recorded = Wire()
    monkeypatch.setattr(opening, "store_client", recorded.store_client)
    checked = opening.caller_arn

    def caller_arn(stage: Any, sts: Any = None) -> str:
        recorded.add("GetCallerIdentity")
        return checked(stage, sts)

    monkeypatch.setattr(opening, "caller_arn", caller_arn)
    return recorded


@pytest.fixture
def entry_point_frozen() -> Iterator[None]:
    """`mwaa_elt.__main__.main` freezes what it loaded out of the collector's passes: thawed
    after the test, so the worker's later tests are collected as before."""
    yield
    gc.unfreeze()


def test_the_listing_is_on_the_wire_when_the_promotion_opens(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Preparing the listing's request takes a while in its thread: the opening waits for it.
    prepare = StageStore.current_etags

    def slow_to_prepare(self: StageStore, prefix: str) -> dict[str, str]:
        time.sleep(LISTING_PREPARED_SECONDS)
        return prepare(self, prefix)

    monkeypatch.setattr(StageStore, "current_etags", slow_to_prepare)
    opened = open_promotion(Project(scratch_project), PromoteRequest(to="dev"))
    on_return = list(wire.sent)
    assert on_return[0] == "GetCallerIdentity"
    assert "ListObjectsV2" in on_return
    (reads,) = opened.reads
    assert reads.environment.name == "dev"
    assert reads.dag_etags.result() == {}
    assert reads.manifest.result() == (Manifest(stage="dev"), None)
    assert reads.identity.promoted_by.endswith(":user/moto")
    assert wire.sent[0] == "GetCallerIdentity"
    assert sorted(wire.sent[1:]) == ["GetObject", "ListObjectsV2"]


def test_the_gates_airflow_starts_once_the_listing_is_on_the_wire(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow is needed only after validation and rendering; the reads are needed at once."""
    from mwaa_elt.promote import gates

    monkeypatch.setattr(gates, "start_dagbag_gate", lambda version, root: wire.add("Airflow"))
    open_promotion(Project(scratch_project), PromoteRequest(to="dev")).finish()
    assert wire.sent.count("Airflow") == 1
    assert wire.sent.index("GetCallerIdentity") < wire.sent.index("ListObjectsV2")
    assert wire.sent.index("ListObjectsV2") < wire.sent.index("Airflow")


def test_credentials_of_another_account_read_nothing_of_the_stage(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "emulated", lambda: False)  # moto's account is not dev's
    with pytest.raises(ConfigError, match="lives in 111111111111"):
        open_promotion(Project(scratch_project), PromoteRequest(to="dev"))
    assert wire.sent == ["GetCallerIdentity"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (PromoteRequest(to="qa"), "no stage 'qa'"),
        (PromoteRequest(to="prod", source="dev"), "promotions may not skip a stage"),
        (PromoteRequest(to="staging"), "run: mwaa-elt promote --from dev --to staging"),
    ],
)
def test_a_refused_route_calls_no_aws_at_all(
    wire: Wire, scratch_project: Path, request_: PromoteRequest, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        open_promotion(Project(scratch_project), request_)
    assert wire.sent == []


def test_a_promotion_opened_ahead_is_taken_whole_and_nothing_is_sent_twice(
    wire: Wire, scratch_project: Path
) -> None:
    opening.open_ahead(["promote", "--yes", "--to", "dev", "-C", str(scratch_project)])
    assert wire.sent[0] == "GetCallerIdentity" and "ListObjectsV2" in wire.sent
    opened = open_promotion(find_project(scratch_project), PromoteRequest(to="dev"))
    (reads,) = opened.reads
    assert reads.dag_etags.result() == {}
    assert reads.manifest.result() == (Manifest(stage="dev"), None)
    opened.finish()
    assert wire.sent[0] == "GetCallerIdentity"  # once, before anything of the stage
    assert sorted(wire.sent[1:]) == ["GetObject", "ListObjectsV2"]  # not read again
    assert opening._opened_ahead == {}


@pytest.mark.parametrize(
    ("arguments", "request_", "message"),
    [
        (["--to", "qa"], PromoteRequest(to="qa"), "no stage 'qa'"),
        (["--from=dev", "--to", "prod"], PromoteRequest(to="prod", source="dev"), "may not skip"),
    ],
)
def test_what_opening_ahead_raised_is_raised_when_the_command_opens(
    wire: Wire,
    scratch_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    request_: PromoteRequest,
    message: str,
) -> None:
    loaded: list[Path] = []
    load = opening.load_all_stages
    monkeypatch.setattr(opening, "load_all_stages", lambda path: loaded.append(path) or load(path))
    opening.open_ahead(["promote", *arguments, "--project-dir", str(scratch_project)])
    with pytest.raises(ConfigError, match=message):
        open_promotion(find_project(scratch_project), request_)
    assert len(loaded) == 1 and wire.sent == []  # checked once, ahead; nothing of AWS
    assert opening._opened_ahead == {}


def test_credentials_refused_ahead_are_checked_once(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "emulated", lambda: False)  # moto's account is not dev's
    opening.open_ahead(["promote", "--to", "dev", "-C", str(scratch_project)])
    with pytest.raises(ConfigError, match="lives in 111111111111"):
        open_promotion(find_project(scratch_project), PromoteRequest(to="dev"))
    assert wire.sent == ["GetCallerIdentity"]


def test_an_opening_ahead_for_another_route_ends_unused(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the arguments read ahead otherwise than the command line reads them, the command
    opens its own route; what was opened ahead has finished its reads before that returns."""
    # dev's listing (opened ahead) is still being prepared long after staging's opening returns
    # unless `open_promotion` waits for it.
    prepare = StageStore.current_etags

    def slow_for_dev(self: StageStore, prefix: str) -> dict[str, str]:
        if self.stage.name == "dev":
            time.sleep(UNUSED_LISTING_SECONDS)
        return prepare(self, prefix)

    monkeypatch.setattr(StageStore, "current_etags", slow_for_dev)
    opening.open_ahead(["promote", "--to", "dev", "-C", str(scratch_project)])
    (ahead,) = opening._opened_ahead.values()
    assert isinstance(ahead, opening.Opening)
    opened = open_promotion(
        find_project(scratch_project), PromoteRequest(to="staging", source="dev")
    )
    assert all(reads.dag_etags.done() and reads.manifest.done() for reads in ahead.reads)
    assert opened is not ahead and opening._opened_ahead == {}


def test_the_executable_opens_a_promotion_before_it_imports_the_command_line(
    wire: Wire, scratch_project: Path, monkeypatch: pytest.MonkeyPatch, entry_point_frozen: None
) -> None:
    import mwaa_elt.cli
    from mwaa_elt import __main__

    arguments = ["promote", "--to", "dev", "--plan", "-C", str(scratch_project)]
    monkeypatch.setattr("sys.argv", ["mwaa-elt", *arguments])
    seen: list[dict[Any, Any]] = []
    monkeypatch.setattr(mwaa_elt.cli, "main", lambda: seen.append(dict(opening._opened_ahead)))
    __main__.main()
    root = find_project(scratch_project).root
    assert list(seen[0]) == [(root, None, "dev")]
    assert isinstance(seen[0][root, None, "dev"], opening.Opening)
    open_promotion(find_project(scratch_project), PromoteRequest(to="dev")).finish()


def test_the_collector_is_off_while_the_command_line_loads_and_on_when_the_command_runs(
    monkeypatch: pytest.MonkeyPatch, entry_point_frozen: None
) -> None:
    """What loads before the command is frozen out of the collector's passes, not collected."""
    import mwaa_elt.cli
    from mwaa_elt import __main__
    from mwaa_elt.promote import airflow_ahead

    enabled: list[tuple[str, bool]] = []
    monkeypatch.setattr("sys.argv", ["mwaa-elt", "promote", "--to", "dev"])
    monkeypatch.setattr(
        airflow_ahead, "start_for_arguments", lambda _: enabled.append(("airflow", gc.isenabled()))
    )
    monkeypatch.setattr(
        opening, "open_ahead", lambda _: enabled.append(("opening", gc.isenabled()))
    )
    monkeypatch.setattr(
        mwaa_elt.cli,
        "main",
        lambda: enabled.append(("command", gc.isenabled() and gc.get_freeze_count() > 0)),
    )
    assert gc.isenabled()
    __main__.main()
    assert enabled == [("airflow", False), ("opening", False), ("command", True)]
    assert gc.isenabled()
