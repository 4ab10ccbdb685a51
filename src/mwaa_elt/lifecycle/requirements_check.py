"""The environment's requirements.txt against the constraints of MWAA's image for a target version.

Checked offline with `packaging`: MWAA installs requirements.txt with Airflow's constraint file of
the target version, a flat list of `==` pins, and with its own "essential" pins that a user may not
override. A requirement conflicts exactly when its specifier excludes the pin of its distribution;
that is what pip's resolver would find after a 20-30 minute environment update, found here
before it. `uv pip compile` would also resolve the distributions the constraints leave free, but
needs the package index; those are listed instead, as what the constraints do not decide.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents.environment_files import (
    FORBIDDEN_PACKAGES,
    _logical_lines,
    build_requirements,
)
from mwaa_elt.mwaa_images import MwaaImage, mwaa_image
from mwaa_elt.stage import Stage

FindingKind = Literal["conflict", "essential", "invalid", "marker", "unconstrained", "dropped"]
_BLOCKING: frozenset[str] = frozenset({"conflict", "essential", "invalid"})
_LINE = re.compile(r"^(?P<path>.+?): line (?P<line>\d+): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class RequirementFinding:
    """One requirement of requirements.txt and what the target's constraints make of it."""

    path: str
    line: int
    col: int
    requirement: str
    kind: FindingKind
    message: str

    @property
    def blocking(self) -> bool:
        return self.kind in _BLOCKING

    def to_dict(self) -> dict[str, str | int | bool]:
        return {**asdict(self), "blocking": self.blocking}


def check_requirements(
    source: Path, target: Stage, current: Stage, *, shown: str | None = None
) -> tuple[RequirementFinding, ...]:
    """Every problem of `source` under `target`'s MWAA image, with its line; `current` is the
    stage as it runs now, to name what its constraints pinned and the target's no longer do."""
    shown = shown or str(source)
    findings: list[RequirementFinding] = []
    try:  # the checks every build of requirements.txt applies, for the target's versions
        build_requirements(target, source)
    except ConfigError as error:
        for message in error.messages:
            match = _LINE.match(message)
            line = int(match["line"]) if match else 0
            text = match["message"] if match else message
            findings.append(RequirementFinding(shown, line, 1, "", "invalid", text))
    image = mwaa_image(target.airflow.version)
    before = mwaa_image(current.airflow.version)
    text = source.read_text(encoding="utf-8")
    raw = text.splitlines()
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # build_requirements reported it
        if canonicalize_name(requirement.name) in FORBIDDEN_PACKAGES:
            continue  # and a requirement on Airflow itself
        finding = _check(requirement, image, before)
        if finding is not None:
            kind, message = finding
            col = len(raw[number - 1]) - len(raw[number - 1].lstrip()) + 1
            findings.append(RequirementFinding(shown, number, col, str(requirement), kind, message))
    return tuple(sorted(findings, key=lambda f: (f.line, f.col, f.kind)))


def _check(
    requirement: Requirement, image: MwaaImage, before: MwaaImage
) -> tuple[FindingKind, str] | None:
    name = canonicalize_name(requirement.name)
    version = image.airflow_version
    if requirement.marker is not None:
        environment = {
            **default_environment(),
            "python_version": image.python_minor,
            "python_full_version": image.python_version,
            "sys_platform": "linux",
            "platform_system": "Linux",
        }
        if not requirement.marker.evaluate(environment):
            return (
                "marker",
                f"not installed on MWAA's Airflow {version} image: its marker "
                f"'{requirement.marker}' is false for Python {image.python_version} on Linux",
            )
    essential = image.essential_pins.get(name)
    pin = essential or image.pins.get(name)
    if pin is None:
        if name in before.pins:
            return (
                "dropped",
                f"Airflow {before.airflow_version}'s constraints pin {name}=={before.pins[name]}; "
                f"Airflow {version}'s do not pin it, so pip resolves it freely on Python "
                f"{image.python_minor}: pin a version known to work with Airflow {version}",
            )
        return None
    if _allows(requirement, pin):
        return None
    kind: FindingKind = "essential" if essential else "conflict"
    fixed = "MWAA's essential constraints" if essential else "Airflow's constraints"
    return (
        kind,
        f"'{requirement}' excludes {name}=={pin}, which {fixed} for Airflow {version} "
        f"(Python {image.python_minor}) pin; MWAA's install would fail and roll the environment "
        f"back: {'remove the line' if essential else 'relax or remove the version specifier'} "
        "(the constraint file decides the version)",
    )


def _allows(requirement: Requirement, pin: str) -> bool:
    if not requirement.specifier:
        return True
    try:
        return requirement.specifier.contains(Version(pin), prereleases=True)
    except InvalidVersion:
        return requirement.specifier.contains(pin, prereleases=True)
