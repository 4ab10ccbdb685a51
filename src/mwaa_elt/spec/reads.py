"""Each file a spec references read from disk once while that spec is validated.

The file checks, the safety scans (secrets, scripts) and the SQL analysis all read a spec's SQL
and script files; inside `reading_once()` they share one read of each. Outside it (render,
promote, tests calling a check directly) every call reads the disk, as before. A failed read is
not remembered: each caller gets and reports its own error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

_READ: ContextVar[dict[Path, bytes] | None] = ContextVar("mwaa_elt_spec_reads", default=None)


@contextmanager
def reading_once() -> Iterator[None]:
    """Within, `read_bytes` reads each path at most once (nested uses share the outer one)."""
    token = _READ.set({}) if _READ.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _READ.reset(token)


def read_bytes(path: Path) -> bytes:
    """`path.read_bytes()`, from memory when it was read already inside `reading_once()`."""
    read = _READ.get()
    if read is None:
        return path.read_bytes()
    found = read.get(path)
    if found is None:
        found = read[path] = path.read_bytes()
    return found
