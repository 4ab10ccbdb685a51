"""Safe YAML loading that keeps a (line, col) mark for every key and value.

Specs and stack files are hostile input as far as this module is concerned: size, depth, anchors
and aliases, tags and duplicate keys are refused with a located message instead of being trusted.
A `FileKind` words the messages for the kind of file loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mwaa_elt.diagnostics import Mark, byte_mark, mark_at

# A spec is a page of YAML; SQL lives in its own files. The cap keeps hostile input fast.
MAX_SPEC_BYTES = 256 * 1024
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32

# The C parser only produces events; composing ourselves lets us refuse anchors and depth
# before any value is built, and keeps hostile input fast.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Line breaks to YAML 1.1 but not to editors, git or our line numbers: refused, so every line
# number a message gives is the same line an analyst's editor shows.
_YAML_ONLY_BREAK = re.compile("\r(?!\n)|[\x85\u2028\u2029]")
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class FileKind:
    """How messages name a kind of YAML file: what it is, and what an empty one should hold."""

    name: str
    empty: str
    one_document: str

    @property
    def too_deep(self) -> str:
        return f"nested deeper than {MAX_DEPTH} levels; {self.name} is never this deep"


@dataclass
class YamlDocument:
    """Plain Python data plus where each part of it was written.

    `key_marks[path]` locates a mapping key (or a list item); `value_marks[path]` the value;
    `styles[path]` is the scalar style (None, "'", '"', '|', '>') of string values.
    """

    data: Any
    text: str
    key_marks: dict[Path_, Mark] = field(default_factory=dict)
    value_marks: dict[Path_, Mark] = field(default_factory=dict)
    styles: dict[Path_, str | None] = field(default_factory=dict)

    def mark(self, path: Path_) -> Mark:
        """The mark of the deepest part of `path` that exists in the document."""
        for end in range(len(path), 0, -1):
            found = self.key_marks.get(path[:end])
            if found is not None:
                return found
        return Mark(1, 1)


@dataclass(frozen=True)
class YamlProblem:
    """A located problem found while loading."""

    mark: Mark
    message: str


class _Refused(Exception):
    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.problem = YamlProblem(mark, message)


def _mark(event_mark: Any) -> Mark:
    # Marks are immutable and specs share their positions: one object per position.
    key = (event_mark.line, event_mark.column)
    found = _MARKS.get(key)
    if found is None:
        if len(_MARKS) >= 65536:
            _MARKS.clear()
        found = _MARKS[key] = Mark(event_mark.line + 1, event_mark.column + 1)
    return found


_MARKS: dict[tuple[int, int], Mark] = {}


def decode(
    raw: bytes, *, what: str = "a spec", limit: int = MAX_SPEC_BYTES
) -> tuple[str | None, list[YamlProblem]]:
    """UTF-8 text of `raw`, or a located problem for oversized, binary or non-UTF-8 content."""
    if len(raw) > limit:
        return None, [
            YamlProblem(
                Mark(1, 1),
                f"file is {len(raw)} bytes; the limit is {limit} bytes — "
                "split it, or move large SQL into separate files",
            )
        ]
    if b"\x00" in raw:
        mark = byte_mark(raw, raw.index(b"\x00"))
        return None, [YamlProblem(mark, f"binary content (NUL byte); {what} is UTF-8 text")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = exc.start
        mark = byte_mark(raw, pos)
        return None, [
            YamlProblem(
                mark,
                f"byte 0x{raw[pos]:02x} is not UTF-8; save the file as UTF-8 ({what} is text)",
            )
        ]
    text = text.removeprefix("\ufeff")
    control = _CONTROL.search(text)
    if control:
        return None, [
            YamlProblem(
                mark_at(text, control.start()),
                f"control character U+{ord(control.group()):04X}; {what} is plain text",
            )
        ]
    return text, []


def load_yaml(raw: bytes, kind: FileKind) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Parse one YAML document into data with marks; problems instead of exceptions."""
    text, problems = decode(raw)
    if text is None:
        return None, problems
    return load_yaml_text(text, kind)


def load_yaml_text(text: str, kind: FileKind) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Like `load_yaml`, for text already decoded."""
    brk = _YAML_ONLY_BREAK.search(text)
    if brk:
        return None, [YamlProblem(mark_at(text, brk.start()), _break_message(brk.group()))]
    cut = _past_deep_flow(text)
    if cut is not None:
        # Our depth limit must decide, not the YAML library's own (lower-level, differently
        # worded, read ahead of the events we see): compose only up to the bracket that opens
        # level MAX_DEPTH + 1, where our composer is certain to have refused already.
        _, problems = _compose(text[:cut], kind)
        if problems and problems[0].message == kind.too_deep:
            return None, problems
    return _compose(text, kind)


def _compose(text: str, kind: FileKind) -> tuple[YamlDocument | None, list[YamlProblem]]:
    doc = YamlDocument(data=None, text=text)
    composer = _Composer(_LOADER(text), doc, kind)
    try:
        data = composer.document()
    except _Refused as exc:
        return None, [exc.problem]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, text)]
    except yaml.YAMLError as exc:  # e.g. a reader error without a mark
        return None, [YamlProblem(Mark(1, 1), f"invalid YAML: {exc}")]
    finally:
        composer.loader.dispose()
    if composer.problems:
        return None, composer.problems
    doc.data = data
    return doc, []


_OPENERS = "[{"
_CLOSERS = "]}"


def _past_deep_flow(text: str) -> int | None:
    """The offset just past the first '[' or '{' that opens flow level MAX_DEPTH + 1, if any.

    A light scan, not a parser: it skips comments and quoted scalars that start where a node
    may start, and counts brackets. It errs only towards reporting a cut that the composer
    then does not confirm, which costs one more parse, never a wrong message.

    Only brackets, '#' and quotes can change the count, so the scan jumps from one to the next;
    whether a quote starts a node depends on the last character before it that is not a blank.
    """
    depth = 0
    i = 0
    search = _FLOW_SIGNIFICANT.search
    while (found := search(text, i)) is not None:
        i = found.start()
        char = text[i]
        if char in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                return i + 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
        elif char == "#":
            if i == 0 or text[i - 1] in " \t\n":
                newline = text.find("\n", i)
                if newline < 0:
                    return None
                i = newline
                continue
        elif _node_start(text, i):  # a quote
            i = _past_quoted(text, i)
            continue
        i += 1
    return None


_FLOW_SIGNIFICANT = re.compile(r"[\[\]{}#'\"]")


def _node_start(text: str, i: int) -> bool:
    """Whether a node may start at `i`: after a separator, an opening bracket or nothing."""
    j = i - 1
    while j >= 0 and text[j] in " \t\r":
        j -= 1
    return j < 0 or text[j] in ",:-?\n[{"


def _past_quoted(text: str, start: int) -> int:
    """The offset past the quoted scalar that starts at `start` (or the end of the text)."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _break_message(char: str) -> str:
    if char == "\r":
        return (
            "carriage return without a line feed (old Mac line ending); save the file with "
            "LF or CRLF line endings"
        )
    return (
        f"U+{ord(char):04X} is a line break to YAML but not to editors; remove it, or write "
        f"it as \\u{ord(char):04x} inside a double-quoted string"
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    where = _mark(mark) if mark is not None else Mark(1, 1)
    last = text.count("\n") + 1
    if where.line > last:  # the end of the stream, past a file's unterminated last line
        where = Mark(last, len(text) - text.rfind("\n"))
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem or (mark is not None and _char_at(text, mark.line, mark.column) == "\t"):
        return YamlProblem(where, "tab character; YAML indentation must use spaces, not tabs")
    context = f" ({exc.context})" if exc.context else ""
    hint = ""
    if "mapping values are not allowed" in problem:
        hint = "; a value containing ': ' must be quoted"
    elif "found character '%'" in problem or "found character '@'" in problem:
        hint = "; quote values that start with '%' or '@'"
    return YamlProblem(where, f"invalid YAML: {problem}{context}{hint}")


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n")
    if line < len(lines) and column < len(lines[line]):
        return lines[line][column]
    return ""


class _Composer:
    """Builds plain data from parser events, recording marks and refusing unsafe YAML."""

    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument, kind: FileKind) -> None:
        self.loader = loader
        self.doc = doc
        self.kind = kind
        self.problems: list[YamlProblem] = []

    def document(self) -> Any:
        loader = self.loader
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            raise _Refused(Mark(1, 1), self.kind.empty)
        loader.get_event()  # DocumentStart
        data = self._value((), 1)
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.peek_event()
            raise _Refused(_mark(event.start_mark), self.kind.one_document)
        if data is None:
            raise _Refused(Mark(1, 1), self.kind.empty)
        return data

    def _refuse_anchor(self, event: Any) -> None:
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                _mark(event.start_mark),
                f"YAML alias '*{event.anchor}' is not allowed; write the value out in full",
            )
        if getattr(event, "anchor", None):
            raise _Refused(
                _mark(event.start_mark),
                f"YAML anchor '&{event.anchor}' is not allowed; write the value out in full "
                "where it is needed",
            )

    def _value(self, path: Path_, depth: int) -> Any:
        event = self.loader.get_event()
        self._refuse_anchor(event)
        mark = _mark(event.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused(mark, self.kind.too_deep)
        self.doc.value_marks[path] = mark
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event, path, mark)
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not self.loader.check_event(yaml.SequenceEndEvent):
                item_path = (*path, len(items))
                self.doc.key_marks[item_path] = _mark(self.loader.peek_event().start_mark)
                items.append(self._value(item_path, depth + 1))
            self.loader.get_event()
            return items
        if isinstance(event, yaml.MappingStartEvent):
            return self._mapping(path, depth)
        raise _Refused(mark, f"unexpected YAML event {type(event).__name__}")

    def _mapping(self, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event = self.loader.get_event()
            self._refuse_anchor(key_event)
            key_mark = _mark(key_event.start_mark)
            if not isinstance(key_event, yaml.ScalarEvent):
                raise _Refused(key_mark, "a key must be a plain name, not a list or mapping")
            # The raw key text: YAML 1.1 would turn `on:` or `yes:` into booleans.
            key = key_event.value
            child = (*path, key)
            if key in result:
                first = self.doc.key_marks[child]
                self.problems.append(
                    YamlProblem(key_mark, f"duplicate key '{key}' (first at line {first.line})")
                )
                self._value((*path, f"\0dup{len(self.problems)}"), depth + 1)
                continue
            self.doc.key_marks[child] = key_mark
            result[key] = self._value(child, depth + 1)
        self.loader.get_event()
        return result

    def _scalar(self, event: Any, path: Path_, mark: Mark) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:str" or event.style:
            if tag not in ("tag:yaml.org,2002:str", "!"):
                self.problems.append(YamlProblem(mark, f"YAML tag '{tag}' is not allowed"))
            self.doc.styles[path] = event.style or None
            return event.value
        if tag == "tag:yaml.org,2002:timestamp":
            # Dates stay text so the model can say exactly which format it expects.
            self.doc.styles[path] = None
            return event.value
        if tag not in _SCALAR_TAGS:
            self.problems.append(
                YamlProblem(mark, f"YAML tag '{tag}' is not allowed; write a plain value")
            )
            return None
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError):
            self.problems.append(YamlProblem(mark, f"'{event.value}' is not a valid value"))
            return None


_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
