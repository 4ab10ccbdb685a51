"""What the checks across specs read of each spec, and those checks run on summaries alone.

A render that trusts unchanged specs keeps only their summaries; `consistent` tells whether
the specs, summarized, pass the checks `validate_paths` runs across them, and
`validate_trusting` validates the rest (nothing at all when every spec is trusted).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_elt.spec.problems import ValidationReport

if TYPE_CHECKING:
    from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class SpecSummary:
    """What the checks across specs read of a spec that is valid on its own."""

    name: str
    produces: tuple[str, ...]
    after: tuple[str, ...]  # every schedule.after reference, stage overrides included
    creates: tuple[str, ...] = ()  # tables its SQL creates, <database>.<table>
    reads: tuple[str, ...] = ()  # tables it reads that only other pipelines can create


@dataclass(frozen=True)
class IncrementalValidation:
    """Specs validated anew (`report`) and the summary of every spec, valid together."""

    report: ValidationReport
    summaries: dict[Path, SpecSummary]


def after_problem(ref: str, own: str | None, produces: Mapping[str, Sequence[str]]) -> str | None:
    """What is wrong with `schedule.after: <pipeline>.<dataset>` in pipeline `own`, given what
    each pipeline validated together produces; None when the reference holds."""
    pipeline, _, dataset = ref.partition(".")
    if pipeline == own:
        return f"'{ref}' is this pipeline's own dataset; a pipeline cannot wait for itself"
    if pipeline not in produces:
        close = difflib.get_close_matches(pipeline, list(produces), n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else (f"known: {', '.join(sorted(produces)) or 'none'}")
        )
        return f"'{ref}': no pipeline '{pipeline}' among the specs validated together; {hint}"
    if dataset not in produces[pipeline]:
        listed = ", ".join(produces[pipeline]) or "nothing"
        return (
            f"'{ref}': pipeline '{pipeline}' does not produce '{dataset}' (it produces: "
            f"{listed}); add it to that pipeline's produces, or fix the name"
        )
    return None


def consistent(summaries: Iterable[SpecSummary]) -> bool:
    """True when the checks across specs find nothing: unique DAG ids, and every schedule.after
    names another pipeline and a dataset it produces (the rules of `validate_paths`)."""
    produces: dict[str, tuple[str, ...]] = {}
    items = list(summaries)
    for item in items:
        if item.name in produces:
            return False
        produces[item.name] = item.produces
    if any(after_problem(ref, item.name, produces) for item in items for ref in item.after):
        return False
    created = {table for item in items for table in item.creates}
    return all(table in created for item in items for table in item.reads)


def validate_trusting(
    specs: Sequence[Path], stages: dict[str, Stage], trusted: Mapping[Path, SpecSummary]
) -> IncrementalValidation:
    """`validate_incremental`, without importing the validator when every spec is trusted and
    the summaries pass the checks across specs (an unchanged project renders from its record)."""
    if len(trusted) == len(specs) and consistent(trusted.values()):
        return IncrementalValidation(ValidationReport(), dict(trusted))
    from mwaa_elt.spec.validate import validate_incremental

    return validate_incremental(list(specs), stages, trusted)
