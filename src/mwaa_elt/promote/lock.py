"""The stage lock: one promotion at a time per stage, taken with an S3 conditional write.

The lock is a lease: its holder renews `expires_at` while it works, so a holder that died
(killed, lost its network) stops renewing and its lock goes stale within one lease. A stale lock
(expired, or held by a process of this host that no longer runs) is taken over atomically — a
PutObject conditional on the stale lock's ETag — so two promoters can never both take it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.promote.store import StageStore

DEFAULT_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a stage lock, since when, and until when its lease runs."""

    owner: str  # caller ARN, host and pid, for people
    token: str  # unique per acquisition, so a holder only ever releases its own lock
    acquired_at: str
    expires_at: str
    host: str = ""
    pid: int = 0

    def expired(self, now: datetime) -> bool:
        """Whether the lease ran out (its holder stopped renewing it)."""
        return datetime.fromisoformat(self.expires_at) <= now

    def holder_is_dead(self) -> bool:
        """Whether the holder was a process of this host that no longer runs."""
        if self.host != socket.gethostname() or self.pid <= 0 or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it runs, as another user
            return False
        return False

    def stale_reason(self, now: datetime) -> str | None:
        """Why this lock may be taken over, or None while its holder may still be working."""
        if self.holder_is_dead():
            return f"its holder (pid {self.pid} on {self.host}) is no longer running"
        if self.expired(now):
            return f"its lease expired at {self.expires_at}"
        return None


@dataclass
class Lease:
    """A lock this process holds, and the ETag of the lock object it last wrote."""

    info: LockInfo
    etag: str
    taken_over: LockInfo | None = None  # the stale lock this acquisition replaced
    lost: bool = False  # someone broke the lock (--force-unlock) while it was held
    release_error: str | None = None  # the lock could not be deleted; its lease will expire
    _stop: threading.Event = field(default_factory=threading.Event)


def lock_owner(caller: str) -> str:
    """The owner string recorded in a lock: the caller ARN, the host and the pid."""
    return f"{caller} on {socket.gethostname()} (pid {os.getpid()})"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _body(info: LockInfo) -> bytes:
    return json.dumps(asdict(info), indent=2).encode()


def read_lock(store: StageStore) -> LockInfo | None:
    """The lock currently held on the stage, or None."""
    found = store.get(store.stage.lock_key)
    return None if found is None else _parse(found[0])


def _parse(body: bytes) -> LockInfo:
    try:
        data = json.loads(body)
        return LockInfo(**{k: v for k, v in data.items() if k in LockInfo.__dataclass_fields__})
    except (ValueError, TypeError):
        return LockInfo("(unreadable lock file)", "", "unknown", "1970-01-01T00:00:00+00:00")


def acquire(store: StageStore, owner: str, *, lease: timedelta = DEFAULT_LEASE) -> Lease:
    """Take the stage lock, taking over a stale one; ConfigError naming a live holder."""
    now = _now()
    info = LockInfo(
        owner=owner,
        token=uuid.uuid4().hex,
        acquired_at=now.isoformat(),
        expires_at=(now + lease).isoformat(),
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    key = store.stage.lock_key
    taken = _write(store, info, if_none_match=True)
    if taken is not None:
        return taken
    found = store.get(key)
    if found is None:  # released in between: try once more from scratch
        taken = _write(store, info, if_none_match=True)
        if taken is not None:
            return taken
        found = store.get(key)
    held = _parse(found[0]) if found else None
    if held is not None and found is not None and held.stale_reason(now) is not None:
        taken = _write(store, info, if_match=found[1])
        if taken is not None:
            taken.taken_over = held
            return taken
        held = read_lock(store)  # someone else took it over first
    who = held.owner if held else "another promotion"
    since = held.acquired_at if held else "a moment ago"
    raise ConfigError(
        f"stage {store.stage.name} is locked by {who} since {since}; wait for it to finish — "
        "if its holder died on another machine, its lease expires within "
        f"{int(lease.total_seconds() // 60)} minutes, or use --force-unlock"
    )


def _write(
    store: StageStore, info: LockInfo, *, if_none_match: bool = False, if_match: str | None = None
) -> Lease | None:
    """Write our lock conditionally; a failed condition may hide our own write whose response
    was lost (botocore retried it), so the lock is read back and our token recognised."""
    key = store.stage.lock_key
    etag = store.put_conditional(key, _body(info), if_none_match=if_none_match, if_match=if_match)
    if etag is not None:
        return Lease(info, etag)
    found = store.get(key)
    if found is not None and _parse(found[0]).token == info.token:
        return Lease(info, found[1])
    return None


def renew(store: StageStore, held: Lease, *, lease: timedelta = DEFAULT_LEASE) -> bool:
    """Extend the lease if the lock is still ours; False (and `held.lost`) when it was broken."""
    info = LockInfo(**{**asdict(held.info), "expires_at": (_now() + lease).isoformat()})
    renewed = _write(store, info, if_match=held.etag)
    if renewed is None:
        held.lost = True
        return False
    held.info, held.etag = info, renewed.etag
    return True


def check_held(held: Lease) -> None:
    """Raise when the lock was broken while held, so the work stops before its next write."""
    if held.lost:
        raise ConfigError(
            "the stage lock was broken by someone else (--force-unlock) while this command ran; "
            "it stopped so that two promotions never write at once"
        )


def release(store: StageStore, held: Lease | LockInfo) -> None:
    """Release the lock if it is still ours; someone's forced lock is left alone."""
    token = held.info.token if isinstance(held, Lease) else held.token
    current = read_lock(store)
    if current is not None and current.token == token:
        store.delete(store.stage.lock_key)


def force_unlock(store: StageStore) -> LockInfo | None:
    """Break the stage lock whoever holds it; returns the lock that was broken, if any."""
    held = read_lock(store)
    if held is not None:
        store.delete(store.stage.lock_key)
    return held


def _heartbeat(store: StageStore, held: Lease, lease: timedelta) -> None:
    interval = max(1.0, lease.total_seconds() / 5)
    while not held._stop.wait(interval):
        try:
            if not renew(store, held, lease=lease):
                return
        except MwaaEltError:
            continue  # a transient failure: the lease is long enough for the next attempt


@contextmanager
def stage_lock(
    store: StageStore, owner: str, *, force: bool = False, lease: timedelta = DEFAULT_LEASE
) -> Iterator[Lease]:
    """Hold the stage lock for the `with` block, renewing its lease; with `force`, break a
    held lock first."""
    if force:
        force_unlock(store)
    held = acquire(store, owner, lease=lease)
    beat = threading.Thread(target=_heartbeat, args=(store, held, lease), daemon=True)
    beat.start()
    try:
        yield held
    finally:
        held._stop.set()
        beat.join()
        # A failed release must not hide why the work stopped, nor fail work that succeeded:
        # the lock then lapses with its lease.
        try:
            release(store, held)
        except MwaaEltError as error:
            held.release_error = f"{error}; the lock expires at {held.info.expires_at}"
