"""The stage lock: two promoters never hold it at once, and a stale one is broken on request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import lock
from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage


def test_second_promoter_is_refused_naming_the_holder(store: StageStore, dev: Stage) -> None:
    other = StageStore(dev, make_client("s3", dev.region))
    with lock.stage_lock(store, "arn:alice on host (pid 1)") as held:
        with pytest.raises(
            ConfigError, match=r"stage dev is locked by arn:alice on host \(pid 1\) since"
        ):
            lock.acquire(other, "arn:bob")
        assert lock.read_lock(other) == held
    assert lock.read_lock(store) is None
    with lock.stage_lock(other, "arn:bob"):
        pass


def test_lock_is_released_when_the_promotion_fails(store: StageStore) -> None:
    with pytest.raises(RuntimeError), lock.stage_lock(store, "arn:alice"):
        raise RuntimeError("boom")
    assert lock.read_lock(store) is None


def test_expired_lock_is_named_but_only_broken_with_force(store: StageStore) -> None:
    lock.acquire(store, "arn:dead", ttl=timedelta(seconds=-1))
    with pytest.raises(ConfigError, match=r"expired.*--force-unlock"):
        lock.acquire(store, "arn:alice")
    with lock.stage_lock(store, "arn:alice", force=True) as held:
        assert held.owner == "arn:alice"
    assert lock.read_lock(store) is None


def test_release_leaves_a_lock_someone_else_took_after_force(store: StageStore) -> None:
    mine = lock.acquire(store, "arn:alice")
    lock.force_unlock(store)
    theirs = lock.acquire(store, "arn:bob")
    lock.release(store, mine)
    assert lock.read_lock(store) == theirs


def test_owner_names_caller_host_and_pid() -> None:
    assert lock.lock_owner("arn:aws:iam::1:user/x").startswith("arn:aws:iam::1:user/x on ")
