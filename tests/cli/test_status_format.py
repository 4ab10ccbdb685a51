"""How `status` shortens what it shows without hiding what matters."""

from __future__ import annotations

from mwaa_elt.cli.promotion import short_commit as _short_commit


def test_a_dirty_commit_stays_visibly_dirty_when_shortened() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert _short_commit(commit) == "0123456789ab"
    assert _short_commit(commit + "-dirty") == "0123456789ab-dirty"
    assert _short_commit(None) == "-"
