"""The promotion benchmark's floor for a fresh-clone first promotion: the work that must pass
before the first write, measured in CPU seconds, and the writes as they ran."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import promotion
from bench.generation import make_project


def test_only_the_requests_that_write_count_as_writing() -> None:
    timeline = [
        [10.0, "send", "sts.GetCallerIdentity", "-"],
        [10.1, "response", "sts.GetCallerIdentity", "200"],
        [10.2, "send", "s3.GetObject", ".mwaa-elt/manifest.json"],
        [10.3, "response", "s3.GetObject", "404"],
        [25.0, "send", "s3.PutObject", ".mwaa-elt/lock"],  # the gates passed: writing starts
        [25.1, "response", "s3.PutObject", "200"],
        [30.0, "send", "s3.PutObject", "dags"],
        [34.5, "send", "s3.DeleteObject", ".mwaa-elt/lock"],
        [34.6, "response", "s3.PutObject", "200"],
        [34.75, "response", "s3.DeleteObject", "204"],
        [35.0, "send", "s3.GetObject", ".mwaa-elt/manifest.json"],  # read back after writing
        [35.2, "response", "s3.GetObject", "200"],
    ]
    assert promotion.writes_span(timeline) == 9.75
    assert promotion.writes_span(timeline[:4]) == 0.0  # a run that wrote nothing


def test_the_floor_spreads_the_work_before_writing_over_the_cores_then_adds_the_writes() -> None:
    before = {
        "pipelines": 1000,
        "validate_render_cpu_s": 11.0,
        "dagbag_gate_cpu_s": 13.0,
        "cores": 2,
    }
    floor = promotion.fresh_clone_floor(before, writes_s=10.0, sync_s=14.0)
    assert floor["before_writes_s"] == 12.0  # (11 + 13) CPU-s on 2 cores
    assert floor["floor_s"] == 22.0
    assert floor["ratio"] == round(22.0 / 14.0, 3)
    assert floor["validate_render_cpu_s"] == 11.0 and floor["cores"] == 2  # what it rests on

    row = {
        promotion.FIRST_COLD: {"sync_s": 14.0, "floor": floor},
        **{s: {} for s in promotion.FLOOR_TARGETS if s != promotion.FIRST_COLD},
    }
    (line,) = promotion.fresh_clone_floor_markdown({"sizes": {"1000": row}})[2:]
    assert line == (
        "- 1,000 pipelines: validation and rendering 11.0 CPU-s + the DagBag gate 13.0 CPU-s "
        "on 2 cores = 12.00 s, then the writes 10.00 s: 22.00 s = 1.57\u00d7 sync (14.00 s)."
    )


def test_the_cpu_before_the_first_write_includes_airflow_loading_every_dag(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    make_project(project, 3)
    measured = promotion.first_promotion_cpu(project, dict(os.environ))  # as the bench runs it
    assert measured["pipelines"] == len(list((project / "pipelines").iterdir()))
    assert measured["cores"] >= 1
    assert measured["validate_render_cpu_s"] > 0
    # The gate's probe imports the stage's Airflow (seconds of CPU) before it loads a file.
    assert measured["dagbag_gate_cpu_s"] > 1.0


def test_a_project_that_does_not_validate_stops_the_benchmark(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    make_project(project, 1)
    spec = next((project / "pipelines").glob("*/*.yaml"))
    spec.write_text(spec.read_text() + "\nno_such_key: 1\n")
    with pytest.raises(promotion.BenchError, match="does not validate"):
        promotion.first_promotion_cpu(project, dict(os.environ))
