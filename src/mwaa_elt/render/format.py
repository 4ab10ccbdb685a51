"""ruff format for generated files: one ruff process for the whole batch, however many files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from mwaa_elt.scratch import scratch_folder

# Fixed here rather than read from a pyproject, so output never depends on where it is rendered.
LINE_LENGTH = 100
TARGET_VERSION = "py311"


def ruff_command() -> list[str]:
    """The ruff next to this Python (the project depends on it), else the one on PATH."""
    try:
        from ruff.__main__ import find_ruff_bin

        return [str(find_ruff_bin())]
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        return [found] if found else [sys.executable, "-m", "ruff"]


def ruff_settings() -> list[str]:
    """The settings every generated file is formatted and checked with."""
    return ["--isolated", "--line-length", str(LINE_LENGTH), "--target-version", TARGET_VERSION]


def format_python(sources: Mapping[str, str]) -> dict[str, str]:
    """`sources` (relative path → Python text) formatted by ruff; RuntimeError on invalid code."""
    if not sources:
        return {}
    encoded = {relative: text.encode("utf-8") for relative, text in sources.items()}
    with scratch_folder("mwaa-elt-format-", map(len, encoded.values())) as tmp:
        folder = Path(tmp)
        for relative, data in encoded.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        done = subprocess.run(
            [*ruff_command(), "format", "--no-cache", "--quiet", *ruff_settings(), "."],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            # Generated code that does not parse is a bug in a template, not in a spec.
            raise RuntimeError(f"ruff format rejected generated code:\n{done.stderr.strip()}")
        return {relative: (folder / relative).read_text(encoding="utf-8") for relative in sources}
