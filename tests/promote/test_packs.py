"""Source bundles packed end to end and cut back out by the ranges recorded for them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import Bundle
from mwaa_elt.promote.manifest import Manifest
from mwaa_elt.promote.packs import cut, pack_bundles

_BUNDLES = st.dictionaries(
    st.text("0123456789abcdef", min_size=64, max_size=64), st.binary(min_size=1, max_size=300)
).map(lambda found: [Bundle(h, data) for h, data in found.items()])


@given(bundles=_BUNDLES, largest=st.integers(min_value=1, max_value=2_000))
def test_every_bundle_is_cut_back_out_of_exactly_one_pack(
    bundles: list[Bundle], largest: int
) -> None:
    packs = pack_bundles(bundles, largest)
    placed = [(pack, source_hash) for pack in packs for source_hash in pack.ranges]
    assert sorted(h for _, h in placed) == sorted(b.source_hash for b in bundles)
    data = {b.source_hash: b.data for b in bundles}
    for pack, source_hash in placed:
        assert cut(pack.data, pack.ranges[source_hash]) == data[source_hash]
    for pack in packs:  # no larger than asked, unless one bundle alone is larger
        assert len(pack.data) <= largest or len(pack.ranges) == 1
        assert sum(length for _, length in pack.ranges.values()) == len(pack.data)


@given(bundles=_BUNDLES)
def test_the_same_bundles_make_the_same_packs_in_any_order(bundles: list[Bundle]) -> None:
    forward = pack_bundles(bundles, 500)
    backward = pack_bundles(list(reversed(bundles)), 500)
    assert [p.key("b/") for p in forward] == [p.key("b/") for p in backward]


def test_a_range_past_the_end_of_what_was_read_is_not_a_bundle() -> None:
    assert cut(b"abcdef", (2, 3)) == b"cde"
    assert cut(b"abcdef", (4, 3)) is None
    assert cut(b"abcdef", None) == b"abcdef"


def test_a_range_edited_by_hand_into_nonsense_is_refused_naming_it() -> None:
    release = {
        "source_hash": "a" * 64,
        "rendered_hash": "b" * 64,
        "bundle_key": ".mwaa-elt/bundles/packs/c.pack",
        "bundle_range": [-1, 5],
        "templates_hash": "d" * 64,
        "templates_key": ".mwaa-elt/templates/d.tar.gz",
        "dag_key": "dags/p.py",
        "promoted_from": "working-tree",
        "promoted_at": "2025-01-01T00:00:00+00:00",
        "promoted_by": "arn:aws:iam::123456789012:user/moto",
        "tool_version": "0.1.0",
    }
    data = json.dumps({"version": 3, "stage": "dev", "pipelines": {"p": release}}).encode()
    with pytest.raises(ConfigError, match=r"s3://b/m: .* at pipelines\.p\.bundle_range\.0"):
        Manifest.from_bytes(data, "s3://b/m")
