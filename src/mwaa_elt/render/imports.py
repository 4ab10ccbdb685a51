"""The modules a Python file imports, read from its syntax tree: any `import` statement, nested
ones included (in functions, classes, branches, `try` and `match`), relative imports left out.

A render records them for each DAG file it writes, from the text it formats, so that promotion's
package gate reads them from the render instead of parsing every DAG file again.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator


def imported_modules(source: str | bytes) -> tuple[str, ...]:
    """The absolute modules `source` imports, sorted, each once; SyntaxError (or, before
    Python 3.12, ValueError for a NUL byte) if it is not Python."""
    modules: set[str] = set()
    for node in _statements(ast.parse(source).body):
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
