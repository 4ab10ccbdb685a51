"""Hostile input never raises or hangs: random bytes and random YAML give located problems."""

from __future__ import annotations

from pathlib import Path

import yaml
from fuzz_support import hard_timeout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwaa_elt.spec import validate_paths
from mwaa_elt.stage import Stage

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
keys = st.sampled_from(
    ["pipeline", "owner", "tasks", "schedule", "id", "athena", "sql", "depends_on", "x"]
)
yaml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(keys | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _validate(path: Path, raw: bytes, stages: dict[str, Stage]) -> None:
    path.write_bytes(raw)
    with hard_timeout(f"validating {raw[:40]!r}"):
        report = validate_paths([path], stages)
    assert report.problems, raw
    for problem in report.problems:
        assert problem.line >= 1 and problem.col >= 1 and problem.message


@SETTINGS
@given(raw=st.binary(max_size=400))
def test_random_bytes(tmp_path: Path, stages: dict[str, Stage], raw: bytes) -> None:
    _validate(tmp_path / "demo.yaml", raw, stages)


@SETTINGS
@given(value=yaml_values)
def test_random_yaml(tmp_path: Path, stages: dict[str, Stage], value: object) -> None:
    _validate(tmp_path / "demo.yaml", yaml.safe_dump(value).encode(), stages)


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab: -[]{}&*!|>'\"#\n\t{}%@?,")), max_size=200))
def test_random_yaml_punctuation(tmp_path: Path, stages: dict[str, Stage], text: str) -> None:
    _validate(tmp_path / "demo.yaml", text.encode(), stages)
