"""Independent per-spec work spread over the machine's cores, with results in input order.

Workers are forked, so they start with the parent's imports and caches and nothing is sent to
them but chunk bounds. Only a single-threaded parent forks (a fork copies locks other threads may
hold); elsewhere, and for small batches, the work runs in-process. The result never depends on
how the work was split.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

WORKERS_VARIABLE = "MWAA_ELT_WORKERS"  # a number; 1 turns parallel work off
MIN_ITEMS = 48  # below this, starting a worker costs more than it saves
CHUNKS_PER_WORKER = 4  # smaller chunks even out specs of unequal cost

# What forked workers read: set just before the pool starts, cleared when it is done.
_job: tuple[Callable[[Any, Sequence[Any]], list[Any]], Any, Sequence[Any]] | None = None


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(items: int) -> int:
    """How many forked processes `map_chunks` uses for `items` items here and now: as many as
    `process_count` says, but only from a single-threaded parent on Linux."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 1
    return process_count(items)


def process_count(items: int) -> int:
    """How many child processes (not forks: any thread may start them) share `items` items:
    every core for a batch worth splitting, `MWAA_ELT_WORKERS` when set."""
    configured = os.environ.get(WORKERS_VARIABLE, "").strip()
    if configured.isdigit() and int(configured) >= 1:
        return max(1, min(int(configured), items))
    return max(1, min(cores(), items)) if items >= MIN_ITEMS else 1


def _run_chunk(start: int, stop: int) -> list[Any]:
    assert _job is not None, "a worker runs only inside map_chunks"
    function, shared, items = _job
    return function(shared, items[start:stop])


def map_chunks(
    function: Callable[[Any, Sequence[Item]], list[Result]],
    shared: Any,
    items: Sequence[Item],
) -> list[Result]:
    """`function(shared, chunk)` over contiguous chunks of `items`, concatenated in order.

    `function` must return one result per item and be a module-level function; exceptions it
    raises reach the caller (return user errors as data: they are pickled on the way back).
    """
    global _job
    workers = worker_count(len(items))
    if workers <= 1:
        return function(shared, items)
    # Imported here, where a pool starts: a command that forks none does not pay for them.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = min(len(items), workers * CHUNKS_PER_WORKER)
    bounds = [(len(items) * i // chunks, len(items) * (i + 1) // chunks) for i in range(chunks)]
    _job = (function, shared, items)
    # The parent's objects (every imported module) are frozen out of the collector before the
    # fork, so the workers' collections never scan them (nor copy their pages), as Python's
    # `gc.freeze` documentation recommends for fork-based workers. No collection first: it
    # would walk the whole heap while no worker has started (0.1 s after validating 1,000
    # specs); garbage frozen with the rest is collected once `gc.unfreeze` hands it back.
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(_run_chunk, *zip(*bounds, strict=True)))
    finally:
        gc.unfreeze()
        _job = None
    return [result for part in parts for result in part]
