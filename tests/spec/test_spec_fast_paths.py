"""Validation's shortcuts give the verdicts of the slow, obvious computations they replace.

Each shortcut exists for speed only (issue 9's 1,000-spec target); these properties pin that it
never changes an answer: the same cut for deeply nested YAML, and a Jinja text declared valid
without Jinja's full parse only when the full parse finds nothing.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mwaa_elt.diagnostics import located_yaml
from mwaa_elt.diagnostics.located_yaml import _CLOSERS, _OPENERS, MAX_DEPTH, _past_quoted
from mwaa_elt.spec import secrets, stage_vars

SETTINGS = settings(max_examples=600, deadline=None)


def _past_deep_flow_by_char(text: str) -> int | None:
    """The character-by-character scan the fast one replaced, kept as the reference."""
    depth = 0
    node_start = True
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                return i + 1
            node_start = True
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
            node_start = False
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n"):
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
            continue
        elif char in "'\"" and node_start:
            i = _past_quoted(text, i)
            node_start = False
            continue
        elif char in ",:-?\n":
            node_start = True
        elif char not in " \t\r":
            node_start = False
        i += 1
    return None


# YAML-ish text dense in what the scan looks at: brackets, quotes, comments, separators.
yaml_pieces = st.sampled_from(
    ["[", "]", "{", "}", "'", '"', "''", "\\", "#", " #", "\n", " ", "\t", "\r", ",", ":", "-",
     "?", "a", "key: ", "- ", "x'y", "#c\n", "[" * 20, "{" * 20, "'[[[['", '"{{\\"{{"']
)  # fmt: skip
yaml_texts = st.lists(yaml_pieces, max_size=60).map("".join)


@SETTINGS
@given(yaml_texts)
def test_deep_flow_cut_is_the_character_scans(text: str) -> None:
    assert located_yaml._past_deep_flow(text) == _past_deep_flow_by_char(text)


def test_deep_flow_cut_found_past_quotes_and_comments() -> None:
    deep = "[" * (MAX_DEPTH + 1)
    text = f"a: '[[[['  # [[[[\nb: {deep}"
    assert located_yaml._past_deep_flow(text) == len(text)
    assert located_yaml._past_deep_flow(f"a: '{deep}'\n# {deep}\n") is None


# Jinja-ish text: tags well and badly formed, strings, brackets, blocks and comments.
jinja_pieces = st.sampled_from(
    ["{{", "}}", "{{ ds }}", "{{ db.x }}", "{{-", "-}}", "{%", "%}", "{#", "#}", "{% if x %}",
     "{% endif %}", "(", ")", "[", "]", "{", "}", "'", '"', "'}}'", " ", "\n", "x", "-", "+",
     ".", "|", "upper", "macros.ds_add(ds, 7)", "1", ",", "$", "select "]
)  # fmt: skip
jinja_texts = st.lists(jinja_pieces, max_size=30).map("".join)


@SETTINGS
@given(jinja_texts)
def test_jinja_shortcut_only_passes_what_the_full_parse_passes(text: str) -> None:
    full = list(stage_vars._jinja_syntax_problems(text))
    if stage_vars._simple_and_valid(text):
        assert full == [], text
    assert stage_vars.jinja_syntax_problems(text) == full


def test_jinja_shortcut_leaves_broken_tags_to_the_full_parse() -> None:
    for text in ["{{ ds }", "{{ ds }} {{", "{{ x-- }}", "{{ f( }} ) }}", "{{ '}}' ", "{{ }}"]:
        assert not stage_vars._simple_and_valid(text)
        assert stage_vars.jinja_syntax_problems(text), text
    assert stage_vars._simple_and_valid("select {{ db.x }}.t where ds = {{ ds }}\n")


def _candidates_unfiltered(text: str, yaml_file: bool) -> list[int]:
    """Every detector's pattern run over the whole text: the reference for the shortcut."""
    _, keywords, patterns = secrets._configured()
    words = re.compile("|".join(word.pattern for _, word in keywords))
    lines = {text.count("\n", 0, m.start()) + 1 for m in words.finditer(text.lower())}
    for _, _, pattern in patterns:
        lines |= {text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)}
    runs = secrets._QUOTED_OR_PLAIN_RUN if yaml_file else secrets._QUOTED_RUN
    for match in runs.finditer(text):
        if secrets._entropy(match.group()) >= secrets._ENTROPY_FLOOR:
            lines.add(text.count("\n", 0, match.start()) + 1)
    return sorted(lines)


# Text dense in the pieces of the detectors' tokens, in and out of order.
secret_pieces = st.sampled_from(
    ["AKIA", "A3T", "ABCDEFGHIJKLMNOP", "0123456789", "abcdefghijklmnopqrstuvwxyz012345",
     "-us1", "xoxb-", "123-", "eyJ", "hbGciOi", ".", "_", ":", "-", "SG.", "sk_live_",
     "ghp_", "glpat-", "AC", "SK", "-----BEGIN RSA PRIVATE KEY-----", "//r/:_authToken=",
     "https://u:p@h", "AccountKey=", "password = ", "aWs_", "XOXP-", "Https://Hooks.Slack.com/services/T0/B1/", "'", '"', " ", "\n", "select 1", "\u017f", "\u212a",
     "key: ", "- ", "\\", "{{ x }}", "# c", "wJalrXUtnFEMI", "K7MDENG/bPxRfiCY", "\t", "api_key", "Contraseña"]
)  # fmt: skip
secret_texts = st.lists(secret_pieces, max_size=40).map("".join)


@SETTINGS
@given(secret_texts, st.booleans())
def test_secret_candidates_skip_only_patterns_that_cannot_match(text: str, yaml_file: bool) -> None:
    _, keywords, patterns = secrets._configured()
    found = secrets._candidates(text, keywords, patterns, yaml_file)
    assert found == _candidates_unfiltered(text, yaml_file)


@SETTINGS
@given(secret_texts, st.sampled_from([".yaml", ".sql", ".py", ".hql"]))
@example("conf:\n  token: wJalrXUtnFEMIK7MDENG/bPxRfiCY\n", ".yaml")  # a plain YAML value
@example("SELECT 'wJalrXUtnFEMI\\K7MDENG\\bPxRfiCY' AS k\n", ".sql")  # backslashes in a run
def test_secret_candidates_never_hide_a_finding(text: str, suffix: str) -> None:
    """The scan of the candidate lines finds what detect-secrets finds scanning every line."""
    scan = secrets._scan_text.__wrapped__
    expected = scan(suffix, text)
    with pytest.MonkeyPatch.context() as patch:
        every_line = lambda text, *_: list(range(1, len(text.splitlines()) + 1))  # noqa: E731
        patch.setattr(secrets, "_candidates", every_line)
        assert scan(suffix, text) == expected


def test_required_literal_is_what_every_match_contains() -> None:
    assert secrets.required_literal(re.compile(r"sk_live_[0-9a-z]{24}")) == "sk_live_"
    assert secrets.required_literal(re.compile(r"[0-9a-z]{32}-us[0-9]{1,2}")) == "-us"
    assert secrets.required_literal(re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")) == "A"
    assert secrets.required_literal(re.compile(r"abc|xyz")) == ""
    assert secrets.required_literal(re.compile(r"(?:abc)?def")) == "def"
    assert secrets.required_literal(re.compile(r"xox-[a-z]", re.IGNORECASE)) == ""
    assert secrets.required_literal(re.compile(r"(?i)xox-[a-z]")) == ""
    assert secrets.required_literal(re.compile(r"a*bc")) == "bc"
    _, _, patterns = secrets._configured()
    assert sum(1 for literal, caseless, _ in patterns if literal or caseless) >= len(patterns) - 1


def test_caseless_literal_is_what_every_match_in_ascii_text_contains_lower_cased() -> None:
    assert secrets.caseless_literal(re.compile(r"xox-[a-z]", re.IGNORECASE)) == "xox-"
    assert secrets.caseless_literal(re.compile(r"AWS.{0,20}?key", re.IGNORECASE)) == "aws"
    assert secrets.caseless_literal(re.compile(r"xox-[a-z]")) == ""  # case-sensitive: none
    assert secrets.caseless_literal(re.compile(r"(?i)xox-[a-z]")) == ""  # inline: no shortcut
    assert secrets.caseless_literal(re.compile("\u017fecret", re.IGNORECASE)) == ""  # not ASCII
