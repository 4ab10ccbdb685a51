"""Loading a spec's YAML: the shared located loader (`mwaa_elt.diagnostics.located_yaml`), with
messages worded for a spec."""

from __future__ import annotations

from mwaa_elt.diagnostics import Mark
from mwaa_elt.diagnostics.located_yaml import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_SPEC_BYTES,
    FileKind,
    YamlDocument,
    YamlProblem,
    decode,
)
from mwaa_elt.diagnostics.located_yaml import load_yaml as _load_yaml
from mwaa_elt.diagnostics.located_yaml import load_yaml_text as _load_yaml_text

SPEC = FileKind(
    "a spec",
    "empty file; a spec starts with 'pipeline: <name>' (see pipelines/ for examples)",
    "a second YAML document ('---'); a spec file holds exactly one pipeline",
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_SPEC_BYTES",
    "SPEC",
    "Mark",
    "YamlDocument",
    "YamlProblem",
    "decode",
    "load_yaml",
    "load_yaml_text",
]


def load_yaml(raw: bytes) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Parse one spec (or SQL test file) into data with marks; problems instead of exceptions."""
    return _load_yaml(raw, SPEC)


def load_yaml_text(text: str) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Like `load_yaml`, for text already decoded."""
    return _load_yaml_text(text, SPEC)
