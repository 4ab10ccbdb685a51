"""Pipeline specs: the YAML + SQL analysts write, validated with located messages.

`validate_paths` checks specs together; `resolve_pipeline` gives what one stage runs.
Names are imported on first use, so importing a light part (problems, summary) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mwaa_elt.spec.folder import discover_specs
    from mwaa_elt.spec.model import TASK_KINDS, Pipeline, Task
    from mwaa_elt.spec.problems import FileReport, Problem, ValidationReport
    from mwaa_elt.spec.resolve import StageCluster, StagePipeline, StageTask, resolve_pipeline
    from mwaa_elt.spec.schema import pipeline_json_schema, pipeline_json_schema_text
    from mwaa_elt.spec.stage_vars import resolve_stage_vars
    from mwaa_elt.spec.validate import (
        load_pipelines,
        validate_file,
        validate_paths,
    )

_LAZY = {
    "TASK_KINDS": "mwaa_elt.spec.model",
    "Pipeline": "mwaa_elt.spec.model",
    "Task": "mwaa_elt.spec.model",
    "FileReport": "mwaa_elt.spec.problems",
    "Problem": "mwaa_elt.spec.problems",
    "ValidationReport": "mwaa_elt.spec.problems",
    "StageCluster": "mwaa_elt.spec.resolve",
    "StagePipeline": "mwaa_elt.spec.resolve",
    "StageTask": "mwaa_elt.spec.resolve",
    "resolve_pipeline": "mwaa_elt.spec.resolve",
    "pipeline_json_schema": "mwaa_elt.spec.schema",
    "pipeline_json_schema_text": "mwaa_elt.spec.schema",
    "resolve_stage_vars": "mwaa_elt.spec.stage_vars",
    "discover_specs": "mwaa_elt.spec.folder",
    "load_pipelines": "mwaa_elt.spec.validate",
    "validate_file": "mwaa_elt.spec.validate",
    "validate_paths": "mwaa_elt.spec.validate",
}

__all__ = [
    "TASK_KINDS",
    "FileReport",
    "Pipeline",
    "Problem",
    "StageCluster",
    "StagePipeline",
    "StageTask",
    "Task",
    "ValidationReport",
    "discover_specs",
    "load_pipelines",
    "pipeline_json_schema",
    "pipeline_json_schema_text",
    "resolve_pipeline",
    "resolve_stage_vars",
    "validate_file",
    "validate_paths",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
