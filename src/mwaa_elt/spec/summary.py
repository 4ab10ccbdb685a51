"""What the checks across specs read of each spec, and those checks run on summaries alone.

A render that trusts unchanged specs keeps only their summaries; `consistent` tells whether
the specs, summarized, pass the checks `validate_paths` runs across them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mwaa_elt.spec.problems import ValidationReport


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


def consistent(summaries: Iterable[SpecSummary]) -> bool:
    """True when the checks across specs find nothing: unique DAG ids, and every schedule.after
    names another pipeline and a dataset it produces (the rules of `validate_paths`)."""
    owners: dict[str, SpecSummary] = {}
    items = list(summaries)
    for item in items:
        if item.name in owners:
            return False
        owners[item.name] = item
    for item in items:
        for ref in item.after:
            pipeline, _, dataset = ref.partition(".")
            if pipeline == item.name or pipeline not in owners:
                return False
            if dataset not in owners[pipeline].produces:
                return False
    created = {table for item in items for table in item.creates}
    return all(table in created for item in items for table in item.reads)
