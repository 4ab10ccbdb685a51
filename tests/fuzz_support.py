"""Shared by the fuzz tests: a hard time limit per call, hostile text, and a fixed profile.

The profile is derandomized and keeps no example database, so CI runs the same examples every
time and a failure is reproducible by running the test again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# A guard against hangs, not a performance target (those live in bench/): far above what any
# example needs on a loaded CI machine, far below a CI job's timeout.
HANG_SECONDS = 30.0


def fuzz_settings(max_examples: int, **overrides: Any) -> settings:
    """Deterministic Hypothesis settings: derandomized, no database, no deadline flakiness."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        **overrides,
    )


class Hang(BaseException):
    """Raised into code that overran its time limit; a BaseException so `except Exception`
    inside the code under test cannot swallow it."""


@contextlib.contextmanager
def hard_timeout(what: str, seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail with `Hang` when the block runs longer than `seconds` (main thread, POSIX)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"{what} did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Pieces that break naive quoting, templating or encoding when pasted into code or SQL.
QUOTING = ["'", '"', "'''", '"""', "\\", "\\'", '\\"', "\\n", "\\x00", "\\N{BULLET}", "%s", "{0}"]
JINJA = [
    "{{ ds }}",
    '{{ "}}" }}',
    "{{ '{{' }}",
    "{% if params %}x{% else %}y{% endif %}",
    "{# a comment #}",
    "{% raw %}{{ not rendered }}{% endraw %}",
    "}}",
    "%}",
    "#}",
    "${x}",
    "$(whoami)",
]
LINES = ["\n", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
UNICODE = [
    "ünïcødé",
    "שלום",  # right to left
    "مرحبا",
    "\u202e-override",  # right-to-left override
    "\u200b",  # zero width space
    "\u00a0",  # no-break space
    "\ufeff",  # a BOM inside text
    "e\u0301\u0327",  # combining marks
    "😀",
    "👩\u200d👩\u200d👧",  # a ZWJ sequence
    "\U0001d518\U0001d52b\U0001d526",  # outside the BMP (fraktur letters)
    "\U0010fffd",  # the last private-use plane
    "\x1b[31mred\x1b[0m",  # terminal escapes
    "\x00",
    ":smile:",  # rich's emoji codes
    "[bold]markup[/bold]",
]
PIECES = QUOTING + JINJA + LINES + UNICODE


def hostile_text(*, min_size: int = 0, max_pieces: int = 8) -> st.SearchStrategy[str]:
    """Text made of hostile pieces and random characters; sometimes very long."""
    short = st.lists(
        st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=max_pieces
    ).map("".join)
    long = st.tuples(short, st.integers(1_000, 20_000)).map(lambda t: t[0] + "y" * t[1] + t[0])
    # One text in eight is long: enough to meet them often, few enough to keep examples fast.
    text = st.integers(0, 7).flatmap(lambda pick: long if pick == 0 else short)
    return text.filter(lambda s: len(s) >= min_size) if min_size else text
