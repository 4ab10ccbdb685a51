"""ruff's Airflow 3 migration rules over the Python an environment runs besides the DAG files.

Plugins, the Python a startup script runs (its `python ... <<EOF` here-documents), the scripts
shipped with pipelines and the rendered DAG files themselves are checked with AIR301 (removed in
Airflow 3), AIR302 (moved to a provider), AIR303 (changed signature) — those fail the rehearsal —
and AIR311/AIR312 (still work in 3.0, deprecated): reported, not failing.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from mwaa_elt.errors import ExternalError
from mwaa_elt.render.format import ruff_command

SYNTAX_ERROR = "syntax-error"  # ruff reports unparsable Python without a rule code
RULES = ("AIR301", "AIR302", "AIR303", "AIR311", "AIR312")
BLOCKING_RULES = frozenset({"AIR301", "AIR302", "AIR303", SYNTAX_ERROR})
_HEREDOC = re.compile(r"\bpython[0-9.]*\b[^<\n]*<<-?\s*(['\"]?)(?P<tag>[A-Za-z_][A-Za-z0-9_]*)\1")


@dataclass(frozen=True)
class LintFinding:
    """One use of an Airflow API that Airflow 3 removed, moved or deprecated."""

    path: str
    line: int
    col: int
    rule: str
    message: str

    @property
    def blocking(self) -> bool:
        return self.rule in BLOCKING_RULES

    def to_dict(self) -> dict[str, str | int | bool]:
        return {**asdict(self), "blocking": self.blocking}


@dataclass(frozen=True)
class PythonSource:
    """Python code to lint, the name to report it under and the line it starts on."""

    shown: str
    text: str
    first_line: int = 1  # the line of `shown` the text's first line is


def embedded_python(script: str) -> list[tuple[int, str]]:
    """(first line, code) of each Python here-document of a shell script."""
    found: list[tuple[int, str]] = []
    lines = script.splitlines()
    index = 0
    while index < len(lines):
        match = _HEREDOC.search(lines[index])
        index += 1
        if match is None:
            continue
        start = index
        while index < len(lines) and lines[index].strip() != match["tag"]:
            index += 1
        found.append((start + 1, "\n".join(lines[start:index]) + "\n"))
        index += 1
    return found


def collect_sources(
    python_files: Mapping[str, Path], startup_script: Path | None, startup_shown: str | None = None
) -> list[PythonSource]:
    """The Python to lint: files by the name to show them under, and the startup script's
    (shown as `startup_shown`, default its path)."""
    sources = [PythonSource(shown, path.read_text("utf-8")) for shown, path in python_files.items()]
    if startup_script is not None and startup_script.is_file():
        text = startup_script.read_text(encoding="utf-8")
        for first, code in embedded_python(text):
            sources.append(PythonSource(startup_shown or str(startup_script), code, first))
    return sources


def lint_python(sources: Mapping[str, str] | list[PythonSource]) -> tuple[LintFinding, ...]:
    """Run ruff's Airflow 3 rules over `sources` (shown name → code) in one process."""
    items = (
        [PythonSource(shown, text) for shown, text in sources.items()]
        if isinstance(sources, Mapping)
        else list(sources)
    )
    if not items:
        return ()
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-air3-") as scratch:
        folder = Path(scratch)
        by_file: dict[str, PythonSource] = {}
        for index, source in enumerate(items):
            path = folder / f"source_{index}.py"
            path.write_text(source.text, encoding="utf-8")
            by_file[str(path.resolve())] = source
        command = [
            *ruff_command(),
            "check",
            "--isolated",
            "--no-cache",
            "--exit-zero",
            "--select",
            ",".join(RULES),
            "--output-format",
            "json",
            ".",
        ]
        done = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise ExternalError(f"ruff failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        results = json.loads(done.stdout or "[]")
        findings = []
        for result in results:
            source = by_file[str(Path(result["filename"]).resolve())]
            findings.append(
                LintFinding(
                    path=source.shown,
                    line=int(result["location"]["row"]) + source.first_line - 1,
                    col=int(result["location"]["column"]),
                    rule=str(result["code"] or SYNTAX_ERROR),
                    message=str(result["message"]),
                )
            )
    return tuple(sorted(findings, key=lambda f: (f.path, f.line, f.col, f.rule)))
