"""Secrets in a pipeline's files, found by detect-secrets (Yelp) used as a library.

Every file a pipeline's bundle carries (the spec, its SQL and scripts) is scanned; a finding is
reported at file:line with the kind of secret, never the secret itself. A verified false
positive is marked on its line with detect-secrets' own comment, `pragma: allowlist secret`
(`# ...` in YAML and Python, `-- ...` in SQL), or on the line before with
`pragma: allowlist nextline secret`: the mark is visible in review, as it should be.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from mwaa_elt.spec.problems import Problem

# Python's own regular-expression parser, to read what a detector's pattern requires.
_parser: Any = importlib.import_module("re._parser")
_LITERAL: Any = importlib.import_module("re._constants").LITERAL

# detect-secrets' detectors of credentials with a known shape, plus its keyword and
# high-entropy heuristics. Left out: the hex high-entropy detector (it flags every md5 or
# sha256 literal a SQL check compares against), and detectors of vendors' ids whose loose
# keyword rules match ordinary SQL and cost most of the scan (IBM Cloud, Cloudant, SoftLayer,
# Artifactory).
_PLUGINS: list[dict[str, Any]] = [
    {"name": "AWSKeyDetector"},
    {"name": "AzureStorageKeyDetector"},
    {"name": "BasicAuthDetector"},
    {"name": "DiscordBotTokenDetector"},
    {"name": "GitHubTokenDetector"},
    {"name": "GitLabTokenDetector"},
    {"name": "JwtTokenDetector"},
    {"name": "MailchimpDetector"},
    {"name": "NpmDetector"},
    {"name": "OpenAIDetector"},
    {"name": "PrivateKeyDetector"},
    {"name": "PypiTokenDetector"},
    {"name": "SendGridDetector"},
    {"name": "SlackDetector"},
    {"name": "SquareOAuthDetector"},
    {"name": "StripeDetector"},
    {"name": "TelegramBotTokenDetector"},
    {"name": "TwilioKeyDetector"},
    {"name": "KeywordDetector"},
    {"name": "Base64HighEntropyString", "limit": 4.5},
]
ALLOWLIST_COMMENT = "pragma: allowlist secret"
# The base64 detector measures the whole of a quoted string made of its characters (base64,
# URL-safe base64 and the backslash); YAML plain values are quoted first (`_YAML_PLAIN`). So a
# run of them it can flag starts right after a quote, or in YAML after a blank; below 20
# characters no run reaches the entropy floor.
_BASE64_CHARS = r"A-Za-z0-9+/=_\\\-"
_QUOTED_RUN = re.compile(rf"(?<=['\"])[{_BASE64_CHARS}]{{20,}}")
_QUOTED_OR_PLAIN_RUN = re.compile(rf"(?<=['\"\s])[{_BASE64_CHARS}]{{20,}}")
# Below the base64 detector's limit (4.5): a run scanned is a superset of what it measures.
_ENTROPY_FLOOR = 4.0
# A YAML `key: value` line whose plain (unquoted) value detect-secrets' string detectors would
# only see quoted, as its YAML transformer would present it.
_YAML_PLAIN = re.compile(
    r"^(\s*(?:-\s+)?[^\s:#'\"{\[][^:#]*:\s+)([^\s'\"\[{#|>&*!][^#]*?)(\s+#.*)?$"
)


@functools.cache
def _configured() -> tuple[Any, ...]:
    """detect-secrets configured once per process: the plugins above and its default filters."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.settings import configure_settings_from_baseline, get_plugins

    known = {cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()}
    configure_settings_from_baseline({"plugins_used": [p for p in _PLUGINS if p["name"] in known]})
    plugins = tuple(get_plugins())
    # Lines worth the (slow, per-line) scan: any detector's own pattern, a keyword the keyword
    # detector looks for, or a long run the entropy detector may flag. The keywords are matched
    # one by one on lower-cased text, each only where its literal part occurs: faster than
    # their alternation, and the same lines.
    keywords = tuple(
        (required_literal(compiled), compiled)
        for compiled in (re.compile(word) for word in keyword.DENYLIST)
    )
    patterns = []
    for plugin in plugins:
        for pattern in getattr(plugin, "denylist", ()):
            compiled = re.compile(pattern.pattern, pattern.flags | re.MULTILINE)
            patterns.append((required_literal(compiled), caseless_literal(compiled), compiled))
    return plugins, keywords, tuple(patterns)


def required_literal(pattern: re.Pattern[str]) -> str:
    """A text every match of `pattern` contains ('' when none is certain): its longest run of
    literal characters at the top level, where every item must match, in order, once.

    A text without it cannot match, so the pattern need not run over it: most detectors' tokens
    start with a fixed text (`xox`, `sk_live_`, `eyJ`, `-----BEGIN`), and most SQL has none.
    """
    try:
        parsed: Any = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # beyond this Python's own parser: no shortcut
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""  # case-folded matching (Unicode folds included): no shortcut
    best, run = "", ""
    for op, value in parsed:
        if op is _LITERAL:
            run += chr(value)
            continue
        best, run = max(best, run, key=len), ""
    return max(best, run, key=len)


def caseless_literal(pattern: re.Pattern[str]) -> str:
    """For a case-insensitive `pattern`, the lower-cased text every match contains in an ASCII
    text, lower-cased ('' when none is certain, or `pattern` is case-sensitive): its longest
    run of ASCII literal characters at the top level. In ASCII text a case-insensitive match
    of an ASCII letter is exactly a match of its lower case (the Unicode folds, such as the
    long s or the Kelvin sign, need non-ASCII text)."""
    if not pattern.flags & re.IGNORECASE:
        return ""
    literal = required_literal(re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE))
    return literal.lower() if literal.isascii() else ""


def _candidates(
    text: str,
    keywords: tuple[tuple[str, re.Pattern[str]], ...],
    patterns: tuple[tuple[str, str, re.Pattern[str]], ...],
    yaml_file: bool,
) -> list[int]:
    """1-based numbers of the lines some detector may flag: a superset of what it finds."""
    lowered, ascii_text = text.lower(), text.isascii()
    offsets: list[int] = []
    for literal, word in keywords:
        if literal in lowered:
            offsets += [m.start() for m in word.finditer(lowered)]
    for literal, caseless, pattern in patterns:
        if literal not in text or (ascii_text and caseless not in lowered):
            continue
        offsets += [m.start() for m in pattern.finditer(text)]
    runs = _QUOTED_OR_PLAIN_RUN if yaml_file else _QUOTED_RUN
    offsets += [m.start() for m in runs.finditer(text) if _entropy(m.group()) >= _ENTROPY_FLOOR]
    if not offsets:
        return []
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return sorted({bisect.bisect_right(starts, offset) for offset in offsets})


def _entropy(data: str) -> float:
    """Shannon entropy in bits per character, as detect-secrets' entropy detectors measure."""
    size = len(data)
    return -sum((n / size) * math.log2(n / size) for n in Counter(data).values())


def _scan(path: Path, text: str) -> tuple[tuple[int, str], ...]:
    """(line, kind) of each secret in `text`; detectors read the file type from the suffix."""
    return _scan_text(path.suffix, text)


# The same text gives the same findings: copies of a file are scanned once per process.
@functools.lru_cache(maxsize=4096)
def _scan_text(suffix: str, text: str) -> tuple[tuple[int, str], ...]:
    """(line, kind) of each secret in `text`, scanning only the lines that may hold one."""
    from detect_secrets.core.scan import _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    plugins, keywords, patterns = _configured()
    yaml_file = suffix in {".yaml", ".yml"}
    numbers = _candidates(text, keywords, patterns, yaml_file)
    if not numbers:
        return ()
    lines = text.splitlines()
    filename = f"file{suffix}"  # detectors choose their patterns by the file's type
    found: list[tuple[int, str]] = []
    for number in numbers:
        if number > len(lines):
            continue
        line = lines[number - 1].rstrip()
        if yaml_file and (plain := _YAML_PLAIN.match(line)):
            line = f'{plain.group(1)}"{plain.group(2)}"{plain.group(3) or ""}'
        snippet = get_code_snippet(lines=lines, line_number=number)
        if _is_filtered_out(
            required_filter_parameters=["line"], filename=filename, line=line, context=snippet
        ):
            continue
        kinds = {
            secret.type
            for plugin in plugins
            for secret in _scan_line(
                plugin=plugin, filename=filename, line=line, line_number=number, context=snippet
            )
            if not _is_filtered_out(
                required_filter_parameters=["context"],
                filename=filename,
                secret=secret.secret_value,
                plugin=plugin,
                line=line,
                context=snippet,
            )
        }
        found += [(number, kind) for kind in sorted(kinds)]
    return tuple(found)


def secret_problems(files: dict[Path, str]) -> list[Problem]:
    """One problem per secret detect-secrets finds in `files` (path -> text): file, line and
    kind; never the value."""
    problems: list[Problem] = []
    for path, text in files.items():
        for line, kind in _scan(path, text):
            problems.append(
                Problem(
                    path,
                    line,
                    1,
                    f"this line holds what looks like a secret ({kind}); secrets never belong "
                    "in a pipeline (it would be published into every stage's bucket and DAG "
                    "files): read it at run time from an Airflow connection or variable "
                    "(Secrets Manager), or, if this is verified not to be a secret, end the line "
                    f"with the comment '{ALLOWLIST_COMMENT}'",
                )
            )
    return problems
