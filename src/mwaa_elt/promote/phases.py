"""Named points of a promotion, so fault tests can kill or pause a real promoter at each one.

`MWAA_ELT_KILL_AT=<point>` makes the process SIGKILL itself on reaching `<point>` (no clean-up
runs, as with `kill -9` or a lost CI runner); `MWAA_ELT_PAUSE_AT=<point>` makes it SIGSTOP itself
there (every thread, the lock's heartbeat included) until it gets SIGCONT. Unset — always,
outside tests — `reached` is one truth test of an empty dict.
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
_SIGNALS = {
    os.environ[name]: sig
    for name, sig in (("MWAA_ELT_KILL_AT", signal.SIGKILL), ("MWAA_ELT_PAUSE_AT", signal.SIGSTOP))
    if os.environ.get(name)
}


def reached(point: str) -> None:
    """Mark that the promotion reached `point` (see `POINTS`)."""
    if _SIGNALS and point in _SIGNALS:
        os.kill(os.getpid(), _SIGNALS[point])
