"""MWAA's route rules over every pair of versions the project knows, stated independently here:
minor changes within a line in place, 2.11.x ↔ 3.x in place, 2.10.x and older → 3.x and
3.x → 2.10.x a new environment, anything MWAA does not offer refused."""

from __future__ import annotations

import itertools

import pytest

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES
from mwaa_elt.errors import ConfigError
from mwaa_elt.lifecycle.routes import MIGRATION_GUIDE, USER_GUIDE, plan_route

LINE_2_OLD = {"2.10.1", "2.10.3"}
LINE_2_BRIDGE = {"2.11.0", "2.11.2"}
LINE_3 = {"3.0.6", "3.2.1", "3.3.1"}


def expected_kind(source: str, target: str) -> str:
    if source == target:
        return "unchanged"
    lines = [LINE_2_OLD | LINE_2_BRIDGE, LINE_3]
    if any(source in line and target in line for line in lines):
        return "in-place"
    if source in LINE_2_BRIDGE and target in LINE_3:
        return "in-place"
    if source in LINE_3 and target in LINE_2_BRIDGE:
        return "in-place"
    return "new-environment"


def test_the_table_covers_every_version_mwaa_offers() -> None:
    assert set(MWAA_AIRFLOW_RELEASES) == LINE_2_OLD | LINE_2_BRIDGE | LINE_3


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(sorted(MWAA_AIRFLOW_RELEASES), repeat=2))
)
def test_every_route_between_offered_versions(source: str, target: str) -> None:
    route = plan_route(source, target)
    assert route.kind == expected_kind(source, target)
    assert (route.from_version, route.to_version) == (source, target)
    assert route.documentation == (
        MIGRATION_GUIDE if route.kind == "new-environment" else USER_GUIDE
    )
    assert route.crosses_major == (source[0] != target[0])
    if MWAA_AIRFLOW_RELEASES[source].python != MWAA_AIRFLOW_RELEASES[target].python:
        assert "Python changes" in route.reason


def test_2_11_0_to_3_0_6_is_in_place_and_2_10_3_needs_a_new_environment() -> None:
    assert plan_route("2.11.0", "3.0.6").kind == "in-place"
    route = plan_route("2.10.3", "3.0.6")
    assert route.kind == "new-environment"
    assert "from Airflow 2.10.3 and lower a major upgrade needs a new environment" in route.reason
    assert "upgrade in place to 2.11.2 first" in route.reason


def test_a_downgrade_from_3_reaches_2_11_only() -> None:
    assert plan_route("3.0.6", "2.11.0").kind == "in-place"
    assert plan_route("3.0.6", "2.11.0").direction == "downgrade"
    route = plan_route("3.0.6", "2.10.3")
    assert route.kind == "new-environment" and "to 2.11.x only" in route.reason


@pytest.mark.parametrize(
    ("source", "target", "named"),
    [
        ("2.11.0", "3.1.0", "--to 3.1.0"),
        ("2.11.0", "2.9.2", "--to 2.9.2"),  # vendored for rehearsals, no longer offered
        ("1.10.12", "2.11.0", "current version 1.10.12"),
        ("2.11.0", "latest", "--to latest"),
    ],
)
def test_a_version_mwaa_does_not_offer_is_refused_naming_the_offered_ones(
    source: str, target: str, named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        plan_route(source, target)
    message = raised.value.messages[0]
    assert message.startswith(f"{named}: not an Airflow version Amazon MWAA offers")
    assert "2.10.1, 2.10.3, 2.11.0, 2.11.2, 3.0.6, 3.2.1, 3.3.1" in message
