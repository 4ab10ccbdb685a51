"""The Airflow of a promotion's DagBag gates, started before the command line is imported.

A gated promotion waits for its Airflow process: it imports Airflow (over a second), then loads
the DAG files the promotion sends it (`gates.start_dagbag_loads`). `gates.start_gates_of` starts
it as soon as the stage model has read the stack files, but importing the command line and the
stage model takes about 0.4 s, while the second core has nothing to do. So `mwaa-elt`
(`mwaa_elt.__main__`) starts it first, for `mwaa-elt promote --to <stage>`, from what the last
promotion into that stage recorded (`remember`): the Airflow version of each of the stage's
environments, valid while the stack files are byte for byte those it was made from. The
interpreter is found as the gate finds it (`airflow_environments.airflow_python`), never read
from the record.

The record only saves time: a gate takes the process started here for its version and project
(`take`) instead of starting one; what no gate takes ends with the command (`end_untaken`).
This module and what it imports need nothing beyond the standard library, so that it runs
before anything else is imported.
"""

from __future__ import annotations

import atexit
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mwaa_elt.check.dagbag import StartedProbe, cancel_probe, start_probe
from mwaa_elt.errors import MwaaEltError
from mwaa_elt.files import replace_file
from mwaa_elt.project import Project, find_project

RECORD_NAME = "gate-airflow.json"  # in the project's cache folder (`Project.cache_dir`)
# Below the command's priority: when there turns out to be nothing to gate, the probe has only
# taken idle CPU before it is ended.
NICENESS = 10
# The options of `mwaa-elt promote` that take a value (all others are flags), and its short
# flags, which a cluster such as `-yC dir` may hold before a short option that takes a value.
_VALUED = {"--to", "--from", "--source-profile", "--project-dir", "-C"}
_SHORT_FLAGS = {"-y"}

_ahead: dict[tuple[str, Path], StartedProbe] = {}


def stacks_digest(stacks_dir: Path) -> str:
    """Digest of the names and bytes of the stack files: what the stage model reads."""
    digest = hashlib.sha256()
    for path in sorted(stacks_dir.glob("Pulumi.*.yaml")):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def remember(cache_dir: Path, stacks_dir: Path, stage: str, versions: Sequence[str]) -> None:
    """Record the Airflow version of each of `stage`'s environments (its own, then a cutover's
    green one) for the next `start_for_arguments`, beside what the record holds of other stages
    made from the same stack files. Written only when it changes, whole or not at all; a record
    that cannot be written only loses the next command its head start."""
    path = cache_dir / RECORD_NAME
    try:
        digest = stacks_digest(stacks_dir)
        before = path.read_bytes().decode(errors="replace") if path.is_file() else ""
        stages = _stages_of(before, digest)
        stages[stage] = list(versions)
        text = json.dumps({"stacks": digest, "stages": stages}, indent=2, sort_keys=True) + "\n"
        if text != before:
            replace_file(path, text.encode())
    except OSError:
        return


def recorded(project_root: Path, stage: str) -> list[str]:
    """The Airflow versions of `stage`'s environments as the project's record has them, when it
    was made from the stack files there are now; none otherwise (no record, another stage, other
    stack files)."""
    project = Project(project_root)
    try:
        text = (project.cache_dir / RECORD_NAME).read_text()
        return _stages_of(text, stacks_digest(project.stacks_dir)).get(stage, [])
    except (OSError, ValueError):  # ValueError: bytes that are not UTF-8
        return []


def _stages_of(text: str, digest: str) -> dict[str, Any]:
    """The stages of a record made from stack files of `digest`, each with its list of
    versions; {} for anything else."""
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(record, dict) or record.get("stacks") != digest:
        return {}
    stages = record.get("stages")
    return {
        name: versions
        for name, versions in (stages.items() if isinstance(stages, dict) else ())
        if isinstance(versions, list) and all(isinstance(v, str) and v for v in versions)
    }


class PromotionTarget(NamedTuple):
    """What the arguments of `mwaa-elt promote` say of its route and project."""

    stage: str  # --to
    source: str | None  # --from
    project_dir: Path | None  # --project-dir, -C


def promotion_target(arguments: Sequence[str]) -> PromotionTarget | None:
    """The route and `--project-dir` of the arguments of `mwaa-elt promote`; None for another
    command, for help, and for arguments this cannot read for sure (the command line parses
    them in its turn, whatever this made of them)."""
    if not arguments or arguments[0] != "promote":
        return None
    stage: str | None = None
    source: str | None = None
    project_dir: Path | None = None
    words = iter(arguments[1:])
    for word in words:
        if word == "--":  # pipeline names follow
            break
        if word in ("--help", "-h"):
            return None
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            attached = bool(equals)
        elif len(word) > 1 and word.startswith("-"):
            short = _short_option(word)
            if short is None:
                return None
            name, value = short
            attached = bool(value)
        else:
            continue  # a pipeline's name
        if name not in _VALUED:
            continue
        if not attached:
            following = next(words, None)
            if following is None:
                return None
            value = following
        if name == "--to":
            stage = value
        elif name == "--from":
            source = value
        elif name in ("--project-dir", "-C"):
            project_dir = Path(value)
    return PromotionTarget(stage, source, project_dir) if stage else None


def _short_option(word: str) -> tuple[str, str] | None:
    """The option that takes a value in a word of short options (`-C`, `-Cdir`, `-yC`,
    `-yCdir`: flags first, as the command line reads them) and the value attached to it ("" when
    the next word is the value); ("", "") for flags only; None for a letter `promote` has not."""
    for index, letter in enumerate(word[1:], start=2):
        option = f"-{letter}"
        if option in _VALUED:
            return option, word[index:]
        if option not in _SHORT_FLAGS:
            return None
    return "", ""


def promotion_in_project(arguments: Sequence[str]) -> tuple[PromotionTarget, Project] | None:
    """What the arguments of `mwaa-elt promote` say, and the project they promote from; None
    when `promotion_target` reads nothing or no project is found (the command line says why in
    its turn)."""
    target = promotion_target(arguments)
    if target is None:
        return None
    try:
        return target, find_project(target.project_dir)
    except MwaaEltError:
        return None


def start_for_arguments(arguments: Sequence[str]) -> None:
    """For `mwaa-elt promote --to <stage>` in a project whose record knows that stage, start
    the Airflow of each of its environments; for anything else, start nothing. Never fails:
    the command reports its arguments' and its project's problems in its turn."""
    promotion = promotion_in_project(arguments)
    if promotion is None:
        return
    target, project = promotion
    root = project.root
    for version in recorded(root, target.stage):
        if (version, root) in _ahead:
            continue
        try:
            _ahead[version, root] = start_probe(version, project_root=root, niceness=NICENESS)
        except (MwaaEltError, OSError):  # an environment not built: its gate will say so
            continue


def take(airflow_version: str, project_root: Path) -> StartedProbe | None:
    """The probe started here for `airflow_version` and the project at `project_root`, if any;
    from now on the caller's to end."""
    return _ahead.pop((airflow_version, project_root), None)


def end_untaken() -> None:
    """End every probe started here that no gate took."""
    while _ahead:
        cancel_probe(_ahead.popitem()[1])


atexit.register(end_untaken)
