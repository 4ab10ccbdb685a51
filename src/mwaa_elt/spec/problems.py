"""What validation returns: problems located at a file, line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_elt.diagnostics import one_line

if TYPE_CHECKING:
    from mwaa_elt.spec.model import Pipeline


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a spec or a file it references; line and col are 1-based.

    The message is always one printable line, so `path:line:col: message` stays one line.
    """

    path: Path
    line: int
    col: int
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


@dataclass
class FileReport:
    """The outcome for one spec file: its problems, and the pipeline when there are none."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    pipeline: Pipeline | None = None
    warnings: list[Problem] = field(default_factory=list)  # reported, never refused

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ValidationReport:
    """The outcome of validating a set of specs together; `pipelines` holds only valid ones."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    @property
    def warnings(self) -> list[Problem]:
        return [w for f in self.files for w in f.warnings]

    @property
    def pipelines(self) -> dict[str, Pipeline]:
        return {f.pipeline.pipeline: f.pipeline for f in self.files if f.pipeline is not None}
