"""The stage lock: one promotion at a time per stage, taken with an S3 conditional write."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.store import StageStore

DEFAULT_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a stage lock, since when, and until when it is considered live."""

    owner: str  # caller ARN, host and pid
    token: str  # unique per acquisition, so a holder only ever releases its own lock
    acquired_at: str
    expires_at: str

    def expired(self, now: datetime) -> bool:
        """Whether the lock outlived its expiry (its holder probably died)."""
        return datetime.fromisoformat(self.expires_at) <= now


def lock_owner(caller: str) -> str:
    """The owner string recorded in a lock: the caller ARN, the host and the pid."""
    return f"{caller} on {socket.gethostname()} (pid {os.getpid()})"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def read_lock(store: StageStore) -> LockInfo | None:
    """The lock currently held on the stage, or None."""
    found = store.get(store.stage.lock_key)
    if found is None:
        return None
    try:
        return LockInfo(**json.loads(found[0]))
    except (ValueError, TypeError):
        return LockInfo("(unreadable lock file)", "", "unknown", "1970-01-01T00:00:00+00:00")


def acquire(store: StageStore, owner: str, *, ttl: timedelta = DEFAULT_TTL) -> LockInfo:
    """Take the stage lock or raise ConfigError naming who holds it and since when."""
    now = _now()
    info = LockInfo(
        owner=owner,
        token=uuid.uuid4().hex,
        acquired_at=now.isoformat(),
        expires_at=(now + ttl).isoformat(),
    )
    body = json.dumps(asdict(info), indent=2).encode()
    if store.put_if_absent(store.stage.lock_key, body, content_type="application/json"):
        return info
    held = read_lock(store)
    who = held.owner if held else "another promotion"
    since = held.acquired_at if held else "a moment ago"
    hint = "wait for it to finish, or ask its owner"
    if held is not None and held.expired(now):
        hint = f"the lock expired at {held.expires_at}; if its holder died, use --force-unlock"
    raise ConfigError(f"stage {store.stage.name} is locked by {who} since {since}; {hint}")


def release(store: StageStore, info: LockInfo) -> None:
    """Release the lock if it is still ours; someone's forced lock is left alone."""
    held = read_lock(store)
    if held is not None and held.token == info.token:
        store.delete(store.stage.lock_key)


def force_unlock(store: StageStore) -> LockInfo | None:
    """Break the stage lock whoever holds it; returns the lock that was broken, if any."""
    held = read_lock(store)
    if held is not None:
        store.delete(store.stage.lock_key)
    return held


@contextmanager
def stage_lock(
    store: StageStore, owner: str, *, force: bool = False, ttl: timedelta = DEFAULT_TTL
) -> Iterator[LockInfo]:
    """Hold the stage lock for the `with` block, breaking a held one first when `force`."""
    if force:
        force_unlock(store)
    info = acquire(store, owner, ttl=ttl)
    try:
        yield info
    finally:
        release(store, info)
