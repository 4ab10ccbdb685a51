"""Work spread over forked workers: results in input order, the parent's collector as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mwaa_elt.parallel import WORKERS_VARIABLE

# In a process of its own: workers are forked only from a single-threaded parent, and a test
# process may have threads about.
_MAP_IN_A_FRESH_PROCESS = """
import gc, json, os
from mwaa_elt import parallel

def pids(offset, items):
    return [(item + offset, os.getpid()) for item in items]

collections = []
gc.collect = lambda *args: collections.append(args) or 0
items = list(range(parallel.MIN_ITEMS * 2))
results = parallel.map_chunks(pids, 1000, items)
print(json.dumps({
    "values": [value for value, _ in results],
    "items": items,
    "workers": len({pid for _, pid in results} - {os.getpid()}),
    "collections": len(collections),
    "frozen_after": gc.get_freeze_count(),
}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_workers_start_without_a_collection_and_the_parent_is_thawed_after() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MAP_IN_A_FRESH_PROCESS],
        env={**os.environ, WORKERS_VARIABLE: "2"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["values"] == [item + 1000 for item in seen["items"]]  # input order
    assert seen["workers"] == 2  # two forked workers did the work
    assert seen["collections"] == 0  # no walk of the parent's heap before forking
    assert seen["frozen_after"] == 0  # every object collectable again
