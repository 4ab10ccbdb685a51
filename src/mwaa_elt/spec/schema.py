"""The JSON Schema of a pipeline spec, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import json
from typing import Any

from mwaa_elt.spec.model import Pipeline

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def pipeline_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12), derived from the models; same input, same output."""
    schema = Pipeline.model_json_schema(mode="validation")
    return {"$schema": SCHEMA_DIALECT, **schema}


def pipeline_json_schema_text() -> str:
    """The schema as the text of `pipelines/pipeline.schema.json` (sorted keys, final newline)."""
    return json.dumps(pipeline_json_schema(), indent=2, sort_keys=True) + "\n"
