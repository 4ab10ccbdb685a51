"""One way to locate and word a problem in a file, shared by the stage and spec models (and the
SQL and script checks): positions, display paths, one-line messages, and the key paths and model
lookups the pydantic translation uses. `located_yaml` loads YAML with a mark for every key and
value; `pydantic_errors` turns validation errors into messages about those keys."""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mwaa_elt.errors import ConfigError


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based line and column in a text file."""

    line: int
    col: int


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, col) of `offset` in `text` (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def mark_at(text: str, offset: int) -> Mark:
    """The `Mark` of `offset` in `text`."""
    return Mark(*position(text, offset))


def byte_mark(raw: bytes, pos: int) -> Mark:
    """The mark of byte `pos`, its column counted in characters as an editor shows them."""
    start = raw.rfind(b"\n", 0, pos) + 1
    before = raw[start:pos].decode("utf-8", "replace").removeprefix("\ufeff" if not start else "")
    return Mark(raw.count(b"\n", 0, pos) + 1, len(before) + 1)


def display_path(path: Path) -> str:
    """`path` as messages show it: relative to the working directory when inside it."""
    # abspath first: a problem may be about a symbolic link, which resolve() would follow.
    here = Path.cwd().resolve()
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        try:
            return str(candidate.relative_to(here))
        except ValueError:
            continue
    return str(path)


def read_text(path: Path, shown: str) -> str:
    """The UTF-8 text of `path`; a ConfigError naming `shown` when it cannot be read as such."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None


def one_line(text: str) -> str:
    """`text` as one printable line: line breaks, tabs and invisible or control characters
    (which messages quote from hostile specs) become escapes such as `\\n` or `\\x1b`."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def key_text(path: Sequence[Any]) -> str:
    """`tasks[2].athena.sql` for a path, as messages name keys."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def model_fields(model: type[BaseModel], *, by_alias: bool = False) -> dict[str, Any]:
    """The fields of `model` by name (or by alias, as a file spells them)."""
    if not by_alias:
        return dict(model.model_fields)
    return {field.alias or name: field for name, field in model.model_fields.items()}


def model_at(
    root: type[BaseModel], loc: Sequence[Any], *, by_alias: bool = False
) -> type[BaseModel]:
    """The model class whose fields are allowed at `loc` (a path of keys)."""
    model = root
    for part in loc:
        if isinstance(part, str):
            field = model_fields(model, by_alias=by_alias).get(part)
            found = _models_in(field.annotation) if field is not None else []
            if found:
                model = found[0]
    return model


def unknown_key_hint(key: str, allowed: Sequence[str], *, cutoff: float = 0.6) -> str:
    """`did you mean 'x'?` for a close known key, else the allowed keys."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=cutoff)
    return f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
