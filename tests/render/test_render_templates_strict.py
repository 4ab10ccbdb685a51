"""The generated DAG files obey the strict-template rules validation applies to specs: every
`{{ }}` the generator writes itself (EMR cluster names, XCom pulls, Variables) exists on the
stage's Airflow line, also in asset-triggered runs on Airflow 3, which have no logical date."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from render_support import EXAMPLES, STAGES

from mwaa_elt.render import RenderResult
from mwaa_elt.spec import Pipeline
from mwaa_elt.spec.stage_vars import expressions
from mwaa_elt.spec.templates import template_problems


def _spec_expressions(pipeline: Pipeline) -> set[str]:
    """The `{{ }}` an analyst wrote (spec and SQL files): validation checks those already."""
    texts = [p.read_text() for p in pipeline.source_dir.rglob("*") if p.is_file()]
    return {e.inner.strip() for text in texts for e in expressions(text)}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("major", [2, 3])
def test_generated_templates_name_only_what_every_run_provides(
    render_for: Callable[[str, int | None], RenderResult],
    examples: dict[str, Pipeline],
    stage: str,
    major: int,
) -> None:
    result = render_for(stage, major)
    checked = 0
    for name in EXAMPLES:
        text = result.files[result.pipelines[name].dag_path].decode()
        written = _spec_expressions(examples[name])
        for expr in expressions(text):
            if expr.inner.strip() in written:
                continue
            checked += 1
            # As if the run were asset-triggered: what the generator adds must not need a
            # logical date, whatever the pipeline's schedule.
            problems = template_problems(
                "{{" + expr.inner + "}}", {major: [stage]}, asset_stages=frozenset({stage})
            )
            assert problems == [], f"{name}: {problems}"
    assert checked >= 3  # the EMR cluster's name, its subnet Variable, XCom pulls
