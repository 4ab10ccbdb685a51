"""Named points of a promotion, so fault tests can kill a real promoter at each of them.

`MWAA_ELT_KILL_AT=<point>` makes the process SIGKILL itself on reaching `<point>` (no clean-up
runs, as with `kill -9` or a lost CI runner). Unset — always, outside tests — `reached` is one
string comparison.
"""

from __future__ import annotations

import os
import signal

# In the order a promotion passes them.
POINTS = (
    "locked",  # the stage lock is held, nothing written yet
    "uploaded",  # scripts, bundles and template snapshots written; no DAG file yet
    "dag-written",  # the first DAG file written, others may be in flight
    "dags-written",  # every DAG file written and deleted; the manifest not yet
    "manifest-written",  # the manifest written; the lock not yet released
)
_KILL_AT = os.environ.get("MWAA_ELT_KILL_AT", "")


def reached(point: str) -> None:
    """Mark that the promotion reached `point` (see `POINTS`)."""
    if _KILL_AT and point == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
