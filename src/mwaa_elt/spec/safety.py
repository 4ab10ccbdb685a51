"""The checks that keep a pipeline from leaking or breaking on AWS (issue 9, items 9-12).

Each family lives in its own module (folder, secrets, scripts, airflow_ids); this one finds the
files a spec references, runs the families over them, and locates what they report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mwaa_elt.spec.airflow_ids import id_clashes, platform_dag_clash
from mwaa_elt.spec.folder import folder_problems, path_problem, size_problem
from mwaa_elt.spec.model import TASK_KINDS
from mwaa_elt.spec.problems import Problem
from mwaa_elt.spec.reads import read_bytes
from mwaa_elt.spec.scripts import (
    hive_parse_problems,
    hive_variable_problems,
    python_problems,
    stage_pythons,
)
from mwaa_elt.spec.secrets import secret_problems
from mwaa_elt.spec.yaml_source import MAX_FILE_BYTES, YamlDocument
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class Referenced:
    """A file a task names (`sql_file` or `script`) that is safe to read."""

    index: int
    kind: str
    key: str
    path: Path
    step: Mapping[str, Any]  # the task's kind settings, as written


def referenced_files(spec: Path, data: Mapping[str, Any]) -> list[Referenced]:
    """The regular files inside the spec's folder that its tasks name, links never followed.

    What is missing, outside, a link or too large is left out here: validation reports it.
    """
    found: list[Referenced] = []
    tasks = data.get("tasks")
    for index, item in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(item, dict):
            continue
        kinds = [k for k in TASK_KINDS if isinstance(item.get(k), dict)]
        if len(kinds) != 1:
            continue
        step = item[kinds[0]]
        for key in ("sql_file", "script"):
            rel = step.get(key)
            if not isinstance(rel, str) or not rel:
                continue
            posix = PurePosixPath(rel.replace("\\", "/"))
            if posix.is_absolute() or ".." in posix.parts or re.match(r"^[A-Za-z]:|~", rel):
                continue
            if path_problem(spec.parent, rel) is not None:
                continue
            file = spec.parent / posix
            try:
                if not os.path.isfile(file) or os.path.islink(file):
                    continue
            except OSError:
                continue
            found.append(Referenced(index, kinds[0], key, file, step))
    return found


def _text(path: Path) -> str | None:
    try:
        raw = read_bytes(path)
    except OSError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None  # reported by validation's own reading of the file


def _script_problems(refs: list[Referenced], stages: Mapping[str, Stage]) -> list[Problem]:
    problems: list[Problem] = []
    pythons = stage_pythons(stages)
    for ref in refs:
        if ref.key != "script":
            continue
        text = _text(ref.path)
        if text is None:
            continue
        if ref.kind == "spark" and ref.path.suffix == ".py":
            found = python_problems(text, pythons)
        elif ref.kind == "hive":
            args = ref.step.get("args")
            passed = [k for k in args if isinstance(k, str)] if isinstance(args, dict) else []
            label = f"tasks[{ref.index}].hive"
            found = hive_variable_problems(text, passed, label) or hive_parse_problems(text)
        else:
            continue
        problems += [Problem(ref.path, p.line, p.col, p.message) for p in found]
    return problems


def safety_problems(spec: Path, doc: YamlDocument, stages: Mapping[str, Stage]) -> list[Problem]:
    """Links and special files, bundle size, secrets, EMR scripts and Airflow id clashes."""
    problems = folder_problems(spec)
    data = doc.data
    if not isinstance(data, dict):
        return problems
    refs = referenced_files(spec, data)
    files = list(dict.fromkeys(ref.path for ref in refs))
    too_big = size_problem(spec, files)
    if too_big is not None:  # refused whatever else it holds: spare the slow scans of it
        problems.append(too_big)
        return problems
    texts = {spec: doc.text} | {file: text for file in files if (text := _text(file)) is not None}
    problems += secret_problems(texts)
    problems += _script_problems(refs, stages)
    clashes = id_clashes(data, list(stages))
    if (platform := platform_dag_clash(data)) is not None:
        clashes.insert(0, platform)
    for where, message in clashes:
        mark = doc.mark(where)
        problems.append(Problem(spec, mark.line, mark.col, message))
    return problems
