"""Render fixtures: the example pipelines validated once, and renders for any stage and Airflow line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from render_support import ROOT, TEMPLATES, with_airflow

from mwaa_elt.render import RenderResult, render_pipelines
from mwaa_elt.spec import Pipeline, discover_specs, validate_paths
from mwaa_elt.stage import Stage, load_all_stages


@pytest.fixture(scope="session")
def all_stages() -> dict[str, Stage]:
    return load_all_stages(ROOT / "stacks")


@pytest.fixture(scope="session")
def examples(all_stages: dict[str, Stage]) -> dict[str, Pipeline]:
    report = validate_paths(discover_specs(ROOT / "pipelines"), all_stages)
    assert report.ok, report.problems
    return report.pipelines


@pytest.fixture(scope="session")
def render_for(
    examples: dict[str, Pipeline], all_stages: dict[str, Stage]
) -> Callable[[str, int | None], RenderResult]:
    """Render the examples for a stage, on its own Airflow line or a forced one; cached."""
    cache: dict[tuple[str, int | None], RenderResult] = {}

    def render(stage: str, major: int | None = None) -> RenderResult:
        if (stage, major) not in cache:
            target = all_stages[stage]
            if major is not None:
                target = with_airflow(target, major)
            cache[(stage, major)] = render_pipelines(examples, target, TEMPLATES, project_root=ROOT)
        return cache[(stage, major)]

    return render
