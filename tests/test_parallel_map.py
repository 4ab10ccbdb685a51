"""Work spread over forked workers: results in input order, the parent's collector as it was."""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence

import pytest

from mwaa_elt import parallel


def _pids(offset: int, items: Sequence[int]) -> list[tuple[int, int]]:
    return [(item + offset, os.getpid()) for item in items]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_workers_start_without_a_collection_and_the_parent_is_thawed_after(monkeypatch) -> None:
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "2")
    collections: list[tuple[int, ...]] = []
    monkeypatch.setattr(parallel.gc, "collect", lambda *args: collections.append(args) or 0)
    items = list(range(parallel.MIN_ITEMS * 2))

    results = parallel.map_chunks(_pids, 1000, items)

    assert [value for value, _ in results] == [item + 1000 for item in items]  # input order
    assert len({pid for _, pid in results} - {os.getpid()}) == 2  # two forked workers did it
    assert collections == []  # no walk of the parent's heap before forking
    assert gc.get_freeze_count() == 0  # every object collectable again
