"""Render validated pipeline specs into Airflow DAG files for one stage, and write them safely.

`render_pipelines` is pure: it returns the files as data. `write_render` replaces an output
folder with them all at once, so a failure leaves the previous output exactly as it was.
The generator (Jinja, the spec model, SQL parsing) is imported on first use, so reading or
writing a render stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mwaa_elt.render.files import WriteSummary, write_render
from mwaa_elt.render.result import RENDERER_VERSION, RenderedPipeline, RenderResult

if TYPE_CHECKING:
    from mwaa_elt.render.generate import render_pipelines
    from mwaa_elt.render.view import EMR_SUBNET_VARIABLE, dataset_for

_LAZY = {
    "render_pipelines": "mwaa_elt.render.generate",
    "EMR_SUBNET_VARIABLE": "mwaa_elt.render.view",
    "dataset_for": "mwaa_elt.render.view",
}

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
