"""The Pulumi program: the stack's stage, provisioned by `mwaa_elt.infra.program`."""

from __future__ import annotations

from pathlib import Path

import pulumi

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.program import provision
from mwaa_elt.stage import load_stage

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"

try:
    # The same validation and messages as `mwaa-elt`, before any resource is declared.
    outputs = provision(load_stage(STACKS_DIR, pulumi.get_stack()))
except ConfigError as exc:
    raise pulumi.RunError("\n".join(exc.messages)) from None

for output_name, value in outputs.items():
    pulumi.export(output_name, value)
