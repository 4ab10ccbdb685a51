"""Pipeline specs: the YAML + SQL analysts write, validated with located messages.

`validate_paths` checks specs together; `resolve_pipeline` gives what one stage runs.
"""

from mwaa_elt.spec.model import TASK_KINDS, Pipeline, Task
from mwaa_elt.spec.problems import FileReport, Problem, ValidationReport
from mwaa_elt.spec.resolve import StageCluster, StagePipeline, StageTask, resolve_pipeline
from mwaa_elt.spec.schema import pipeline_json_schema, pipeline_json_schema_text
from mwaa_elt.spec.stage_vars import resolve_stage_vars
from mwaa_elt.spec.validate import discover_specs, load_pipelines, validate_file, validate_paths

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
