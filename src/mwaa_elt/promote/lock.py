"""The stage lock: one promotion at a time per stage, taken with an S3 conditional write.

The lock is a lease: its holder renews `expires_at` while it works, so a holder that died
(killed, lost its network) stops renewing and its lock goes stale within one lease. A stale lock
(expired, or held by a process of this host that no longer runs) is taken over atomically — a
PutObject conditional on the stale lock's ETag — so two promoters can never both take it.

Writes are fenced by the lock: before each write the holder proves the lock object still has
the ETag it last wrote (`check_held`: one conditional HEAD, shared by every write within
`FENCE_SECONDS`), and stops once it does not. S3 cannot make one object's PUT conditional on
another object, so a write that passed the fence just before a break can still land: the
window is `FENCE_SECONDS` plus the writes already in flight.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from mwaa_elt.errors import ConfigError, MwaaEltError
from mwaa_elt.promote.store import StageStore

DEFAULT_LEASE = timedelta(minutes=5)
# How long a proof of ownership is trusted: writes within it share one conditional HEAD.
FENCE_SECONDS = 1.0
# The heartbeat renews the lease this many times per lease; a lock renewed within two beats
# has a holder that is demonstrably alive.
BEATS_PER_LEASE = 5


@dataclass(frozen=True)
class LockInfo:
    """Who holds a stage lock, since when, and until when its lease runs."""

    owner: str  # caller ARN, host and pid, for people
    token: str  # unique per acquisition, so a holder only ever releases its own lock
    acquired_at: str
    expires_at: str
    host: str = ""
    pid: int = 0
    renewed_at: str = ""  # the holder's last heartbeat (empty: never renewed yet)

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

    def alive_reason(self, now: datetime, lease: timedelta = DEFAULT_LEASE) -> str | None:
        """Why the holder is demonstrably still working (a fresh heartbeat, or a running process
        of this host), or None when it may be gone."""
        if self.stale_reason(now) is not None:
            return None
        if self.host == socket.gethostname() and self.pid > 0 and self.pid != os.getpid():
            return f"its process (pid {self.pid} on {self.host}) is running"
        try:
            beat = datetime.fromisoformat(self.renewed_at or self.acquired_at)
        except ValueError:
            return None
        age = (now - beat).total_seconds()
        if age <= 2 * lease.total_seconds() / BEATS_PER_LEASE:
            return f"its holder renewed it {max(0, int(age))} s ago"
        return None


@dataclass
class Lease:
    """A lock this process holds, and the ETag of the lock object it last wrote."""

    info: LockInfo
    etag: str
    taken_over: LockInfo | None = None  # the stale lock this acquisition replaced
    lost: bool = False  # someone broke the lock (--force-unlock) while it was held
    release_error: str | None = None  # the lock could not be deleted; its lease will expire
    verified_at: float = field(default_factory=time.monotonic)  # last proof it was still ours
    _stop: threading.Event = field(default_factory=threading.Event)
    # Held while the lock object is renewed or checked, so a check never sees a half-renewal.
    _mutex: threading.Lock = field(default_factory=threading.Lock)


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
    now = _now()
    info = LockInfo(
        **{
            **asdict(held.info),
            "expires_at": (now + lease).isoformat(),
            "renewed_at": now.isoformat(),
        }
    )
    with held._mutex:
        started = time.monotonic()
        renewed = _write(store, info, if_match=held.etag)
        if renewed is None:
            held.lost = True
            return False
        held.info, held.etag, held.verified_at = info, renewed.etag, started
    return True


def check_held(
    store: StageStore,
    held: Lease,
    *,
    max_age: float = FENCE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Prove the lock is still ours before a write, or raise so the work stops at once.

    The proof is one conditional HEAD (`If-Match` the lock's ETag), shared by every write that
    starts within `max_age` seconds of it, so parallel uploads cost one request per interval.
    """
    with held._mutex:
        if not held.lost and clock() - held.verified_at > max_age:
            started = clock()
            if store.has_etag(store.stage.lock_key, held.etag):
                held.verified_at = started
            else:
                held.lost = True
        if held.lost:
            raise ConfigError(
                "the stage lock was broken by someone else (--force-unlock) while this command "
                "ran; it stopped before its next write so that two promotions never write at once"
            )


def release(store: StageStore, held: Lease | LockInfo) -> None:
    """Release the lock if it is still ours; someone's forced lock is left alone."""
    token = held.info.token if isinstance(held, Lease) else held.token
    current = read_lock(store)
    if current is not None and current.token == token:
        store.delete(store.stage.lock_key)


def force_unlock(store: StageStore, *, token: str | None = None) -> LockInfo | None:
    """Break the stage lock (only the one with `token`, when given: the lock a user agreed to
    break); returns the lock that was broken, if any."""
    held = read_lock(store)
    if held is not None and (token is None or held.token == token):
        store.delete(store.stage.lock_key)
        return held
    return None


def breaking_live_lock(store: StageStore) -> tuple[LockInfo, str] | None:
    """The lock `--force-unlock` would break when its holder is demonstrably alive, with what
    breaking it does; None when there is no lock or its holder may be gone."""
    from mwaa_elt.promote.apply import WORKERS  # at most this many writes are in flight

    held = read_lock(store)
    alive = None if held is None else held.alive_reason(_now())
    if held is None or alive is None:
        return None
    return held, (
        f"stage {store.stage.name} is locked by {held.owner} since {held.acquired_at}, and "
        f"that holder is alive ({alive}); breaking its lock stops it before its next write "
        f"(it exits 1), but writes it already started — up to {WORKERS} objects, started within "
        f"{FENCE_SECONDS:g} s of the break — may still land over this run's; re-running its "
        "command afterwards (or this one) converges the stage"
    )


def clear_stale(store: StageStore, owner: str) -> LockInfo | None:
    """Take over and release a stale lock (its holder died), so a run with nothing to write
    still leaves the stage unlocked; the lock cleared, or None. A live lock is left alone."""
    held = read_lock(store)
    if held is None or held.stale_reason(_now()) is None:
        return None
    lease = acquire(store, owner)
    release(store, lease)
    return lease.taken_over


def _heartbeat(store: StageStore, held: Lease, lease: timedelta) -> None:
    interval = max(1.0, lease.total_seconds() / BEATS_PER_LEASE)
    while not held._stop.wait(interval):
        try:
            if not renew(store, held, lease=lease):
                return
        except MwaaEltError:
            continue  # a transient failure: the lease is long enough for the next attempt


@contextmanager
def stage_lock(
    store: StageStore,
    owner: str,
    *,
    force: bool = False,
    force_token: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> Iterator[Lease]:
    """Hold the stage lock for the `with` block, renewing its lease; with `force`, break a
    held lock first (only the one with `force_token`, when given)."""
    if force:
        force_unlock(store, token=force_token)
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
