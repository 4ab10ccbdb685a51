"""The modules a Python file imports, read from its syntax tree: any `import` statement, nested
ones included (in functions, classes, branches, `try` and `match`), relative imports left out.

A render records them for each DAG file it writes, from the text it formats, so that promotion's
package gate reads them from the render instead of parsing every DAG file again.

Every import statement holds the keyword `import`, so nothing after the last line that holds
that word imports anything: only the lines up to it are parsed, when they parse on their own
(a DAG file's imports come first, so that is a tenth of the file). Whether the rest is Python is
for the caller to check: the render has ruff format every DAG file, and ruff refuses what
Python's parser refuses, but for a NUL byte (in a comment or a string): a text that holds one is
parsed whole.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator


def imported_modules(source: str | bytes) -> tuple[str, ...]:
    """The absolute modules `source` imports, sorted, each once; SyntaxError (or, before
    Python 3.12, ValueError for a NUL byte) if the part of it that is read is not Python."""
    head = import_head(source)
    nul = b"\0" if isinstance(source, bytes) else "\0"
    if len(head) < len(source) and nul not in source:  # a NUL byte: ruff lets it pass
        try:
            return _modules(ast.parse(head))
        except (SyntaxError, ValueError):  # cut inside a statement, or not Python: read it all
            pass
    return _modules(ast.parse(source))


def import_head(source: str | bytes) -> str | bytes:
    """`source` up to the end of the last line that holds the word `import` (empty when none
    does). Its statements are the file's first ones whenever it parses: the tokens before a
    line's end are the same whatever follows, and a cut inside a bracket, a string or a
    continued line does not parse."""
    if isinstance(source, bytes):
        last = source.rfind(b"import")
        end = source.find(b"\n", last) if last >= 0 else -1
    else:
        last = source.rfind("import")
        end = source.find("\n", last) if last >= 0 else -1
    if last < 0:
        return source[:0]
    return source if end < 0 else source[: end + 1]


def _modules(tree: ast.Module) -> tuple[str, ...]:
    modules: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return tuple(sorted(modules))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in `body`, nested ones included: an import is always a statement, so
    the expressions (most of a DAG file's tree) need no visit."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(node, field, None)
            if isinstance(nested, list):
                yield from _statements(nested)
        for part in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:
            yield from _statements(part.body)
