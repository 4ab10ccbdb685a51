"""The modules a DAG file imports are read from the lines up to its last import, and are
exactly those a parse of the whole file finds."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwaa_elt.render.imports import import_head, imported_modules


def whole_file(source: str | bytes) -> tuple[str, ...]:
    """The reference: every import statement of the whole file's tree, relative ones left out."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return tuple(sorted(modules))


SOURCES = {
    "header": "import pendulum\nfrom airflow.sdk import DAG\n\nwith DAG('x') as dag:\n    pass\n",
    "parenthesized last": "from a import (\n    b,\n    c,\n)\nx = b(c)\n",
    "continued last": "from a import b, \\\n    c\nx = 1\n",
    "try": "try:\n    import numpy\nexcept ImportError:\n    numpy = None\nx = 1\n",
    "if/else": "if flag:\n    import a\nelse:\n    b = 1\nx = 2\n",
    "nested late": "x = 1\n\n\ndef f():\n    import late\n    return late\n\n\ny = f()\n",
    "word in a string": "import a\nsql = '''\nselect imported_at\nfrom t\n'''\n",
    "keyword in a string": "import a\nsql = '''\nimport b\n'''\ny = 1\n",
    "string spans the cut": "import a\nsql = '''\nimport b\nnot python: ;;\n'''\n",
    "decorated": "import a\n\n\n@a.dec\ndef f():\n    from b import c\n    return c\n",
    "match": "match x:\n    case 1:\n        import m\n    case _:\n        pass\nz = 0\n",
    "relative": "from . import sibling\nfrom .pkg import mod\nimport absolute\n",
    "none": "x = 1\ny = x + 1\n",
    "crlf": "import a\r\nfrom b import c\r\nx = 1\r\n",
}


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_the_imports_read_are_those_of_the_whole_file(source: str) -> None:
    assert imported_modules(source) == whole_file(source)
    assert imported_modules(source.encode()) == whole_file(source)


def test_only_the_lines_up_to_the_last_import_are_read() -> None:
    header = "# generated\nimport pendulum\nfrom airflow.sdk import DAG\n"
    source = header + "with DAG('x') as dag:\n    tasks = [\n" + "    1,\n" * 500 + "]\n"
    assert import_head(source) == header  # the rest, most of a DAG file, is never parsed
    assert import_head(source.encode()) == header.encode()
    assert import_head("x = 1\n") == ""
    assert import_head("import a") == "import a"  # no newline after it: the whole text
    # What follows the last import is the caller's to check (the render's ruff format does).
    assert imported_modules(header + "def broken(:\n") == ("airflow.sdk", "pendulum")


@pytest.mark.parametrize(
    "source",
    [
        "import a\nx = 'a NUL byte: \0'\n",  # ruff lets a NUL byte pass: the whole text is read
        "def broken(:\nimport a\n",  # invalid before the last import
        "import a\nfrom b import (\n",  # an import cut short
    ],
)
def test_what_python_cannot_parse_up_to_the_last_import_is_an_error(source: str) -> None:
    with pytest.raises((SyntaxError, ValueError)):
        imported_modules(source)


names = st.sampled_from(["a", "b.c", "airflow.sdk", "os"])
statements = st.one_of(
    names.map(lambda n: f"import {n}\n"),
    names.map(lambda n: f"from {n} import x\n"),
    names.map(lambda n: f"from {n} import (\n    x,\n    y,\n)\n"),
    names.map(lambda n: f"if flag:\n    import {n}\nelse:\n    pass\n"),
    names.map(lambda n: f"def f():\n    import {n}\n    return 1\n"),
    names.map(lambda n: f"s = '''\nimport {n}\n'''\n"),
    names.map(lambda n: f"try:\n    import {n}\nexcept ImportError:\n    pass\n"),
    st.just("x = [\n    1,\n    2,\n]\n"),
    st.just("important = 'imported_at'\n"),
    st.just("y = 1 + \\\n    2\n"),
)


@given(st.lists(statements, max_size=8))
def test_any_mix_of_statements_gives_the_whole_files_imports(parts: list[str]) -> None:
    source = "".join(parts)
    assert imported_modules(source) == whole_file(source)
