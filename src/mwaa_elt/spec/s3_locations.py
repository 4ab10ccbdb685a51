"""Every S3 location a statement reads or writes, checked against the stage's data lake prefixes
(the same lists the execution role's IAM policy grants), after stage variables are resolved.

Writes (CTAS external_location, UNLOAD TO, INSERT into a table with a known location) only under
a write prefix, in a folder of their own that the generator clears before the statement runs
(so a re-run of the same run finds it empty); reads (a table's LOCATION) under a read prefix;
nothing in any stage's MWAA source bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from mwaa_elt.diagnostics import position
from mwaa_elt.spec.sql_parse import Statement, Templated, parse, templated
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class Location:
    """An S3 location in a statement, as written (Jinja restored), and what is done with it."""

    uri: str
    access: str  # "read" (a table's LOCATION), "write" (CTAS, INSERT), "export" (UNLOAD)
    what: str  # e.g. "external_location", "LOCATION", "UNLOAD TO"
    line: int
    col: int


def statement_locations(tpl: Templated, statement: Statement) -> list[Location]:
    """The locations `statement` names itself (INSERT targets are the catalog's business)."""
    found: list[Location] = []
    if statement.kind == "unload" and statement.unload_to is not None:
        line, col = statement.unload_to_at
        found.append(Location(tpl.restore(statement.unload_to), "export", "UNLOAD TO", line, col))
    node = statement.node
    if isinstance(node, exp.Create):
        properties = node.args.get("properties")
        for prop in properties.expressions if properties else []:
            if isinstance(prop, exp.LocationProperty) and isinstance(prop.this, exp.Literal):
                access = "write" if statement.kind == "ctas" else "read"
                found.append(_at(tpl, statement, prop.this.this, access, "LOCATION"))
            elif (
                isinstance(prop, exp.Property)
                and prop.name.lower() == "external_location"
                and isinstance(prop.args.get("value"), exp.Literal)
            ):
                found.append(
                    _at(tpl, statement, prop.args["value"].this, "write", "external_location")
                )
    return found


def _at(tpl: Templated, statement: Statement, value: str, access: str, what: str) -> Location:
    offset = tpl.sql.find(value, statement.start)
    line, col = (statement.line, statement.col)
    if offset >= 0:
        line, col = position(tpl.sql, offset)
    return Location(tpl.restore(value), access, what, line, col)


def clear_location(sql: str) -> str | None:
    """The folder a re-run of `sql` must find empty (a CTAS's external_location, an UNLOAD's
    target), Jinja in place; None when the statement writes no such folder. Used by the
    generator to clear it first, and by validation to require that clearing it is safe."""
    parsed = parse(sql)
    if parsed.problems or len(parsed.statements) != 1:
        return None
    statement = parsed.statements[0]
    if statement.kind not in {"ctas", "unload"}:
        return None
    tpl = templated(sql)
    for location in statement_locations(tpl, statement):
        if location.access in {"write", "export"}:
            return location.uri
    return None


def location_problems(
    uri: str, access: str, what: str, stage: Stage, stages: Mapping[str, Stage]
) -> list[str]:
    """Why `uri` (stage variables resolved, run-time Jinja in place) is wrong for `access`."""
    fixed = uri.split("{{", 1)[0].split("{%", 1)[0]
    if not fixed.startswith("s3://"):
        return [f"{what} '{uri}' is not an s3:// location; write {{{{ lake.uri }}}}<folder>/"]
    bucket, slash, key = fixed[5:].partition("/")
    if not slash and fixed != uri:
        return [
            f"{what} '{uri}' builds its bucket at run time; write the bucket and prefix "
            "literally ({{ lake.uri }}<folder>/) so they can be checked"
        ]
    sources = {s.source_bucket: s.name for s in stages.values()}
    if bucket in sources:
        return [
            f"{what} '{uri}' is in stage {sources[bucket]}'s MWAA source bucket, which holds "
            "DAGs and code, never data; write {{ lake.uri }}<folder>/"
        ]
    if bucket != stage.data_lake_bucket:
        return [
            f"{what} '{uri}' is outside stage {stage.name}'s data lake "
            f"(s3://{stage.data_lake_bucket}/); data stays in the stage: write "
            "{{ lake.uri }}<folder>/"
        ]
    if access == "read":
        allowed = stage.data_lake_read_prefixes
        if not any(key.startswith(p) for p in allowed) and not _complete_prefix(key, allowed, uri):
            return [
                f"{what} '{uri}' is not under a prefix stage {stage.name} may read "
                f"({', '.join(allowed)}); read shared data under {', '.join(allowed)}"
            ]
        return []
    allowed = stage.data_lake_write_prefixes
    if not any(key.startswith(p) for p in allowed):
        return [
            f"{what} '{uri}' writes outside stage {stage.name}'s write prefix "
            f"({', '.join(allowed)}); write under {{{{ lake.uri }}}}<folder>/"
        ]
    rest = min((key[len(p) :] for p in allowed if key.startswith(p)), key=len)
    if not uri.endswith("/") or not rest.strip("/"):
        return [
            f"{what} '{uri}' is cleared before the statement runs (so a re-run finds it empty), "
            "so it must be a folder of its own: write {{ lake.uri }}<folder>/<table>/ ending "
            "in '/'"
        ]
    return []


def _complete_prefix(key: str, allowed: list[str], uri: str) -> bool:
    return "{{" in uri and any(p.startswith(key) for p in allowed)


def overlaps(a: str, b: str) -> bool:
    """Whether two S3 folders share objects (one contains the other); Jinja ends the
    comparison (what follows varies per run, so the fixed parts decide)."""
    fa = re.split(r"\{\{|\{%", a, maxsplit=1)[0]
    fb = re.split(r"\{\{|\{%", b, maxsplit=1)[0]
    fa, fb = (
        fa if fa.endswith("/") or fa != a else fa + "/",
        fb if fb.endswith("/") or fb != b else fb + "/",
    )
    return fa.startswith(fb) or fb.startswith(fa)
