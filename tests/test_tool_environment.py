"""The tool's own environment (.venv, `make setup`) is byte-compiled at install.

Where PYTHONDONTWRITEBYTECODE is set (this project's machines, most CI images and containers),
an environment installed by uv without `--compile-bytecode` compiles every module a command
imports on every start: a no-change promotion of 1,000 pipelines took 1.75 s, of which about
0.65 s compiling botocore, pydantic, Typer and rich and 0.35 s compiling mwaa-elt's own modules
(docs/performance.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import struct
from pathlib import Path

import pytest

# What every `mwaa-elt` command, and a promotion in particular, imports from the environment.
# src/ is not checked: `make setup`, which every target runs, compiles it, and a file edited
# since is compiled in memory on each import until the next `make`.
_MODULES = (
    "botocore.client",
    "pydantic.main",
    "typer.main",
    "rich.console",
    "yaml",
)


@pytest.mark.parametrize("name", _MODULES)
def test_modules_a_command_imports_are_byte_compiled(name: str) -> None:
    source = Path(importlib.import_module(name).__file__ or "")
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.is_file(), (
        f"{cached} is missing: install the environment byte-compiled (`make setup` runs uv with "
        "--compile-bytecode)"
    )
    # The header importlib checks before using the file (PEP 552): flags 0 means it is checked
    # by the source's modification time and size, as compileall writes it by default.
    flags, mtime, size = struct.unpack("<4xIII", cached.read_bytes()[:16])
    stat = source.stat()
    assert flags != 0 or (mtime, size) == (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size), (
        f"{cached} is stale: Python compiles {source} again on every import"
    )
