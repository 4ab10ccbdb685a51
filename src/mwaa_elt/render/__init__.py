"""Render validated pipeline specs into Airflow DAG files for one stage, and write them safely.

`render_pipelines` is pure: it returns the files as data. `write_render` replaces an output
folder with them all at once, so a failure leaves the previous output exactly as it was.
"""

from mwaa_elt.render.files import WriteSummary, write_render
from mwaa_elt.render.generate import (
    RENDERER_VERSION,
    RenderedPipeline,
    RenderResult,
    render_pipelines,
)
from mwaa_elt.render.view import EMR_SUBNET_VARIABLE, dataset_for

__all__ = [
    "EMR_SUBNET_VARIABLE",
    "RENDERER_VERSION",
    "RenderResult",
    "RenderedPipeline",
    "WriteSummary",
    "dataset_for",
    "render_pipelines",
    "write_render",
]
