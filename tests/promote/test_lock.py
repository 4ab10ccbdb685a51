"""The stage lock: never two holders, a stale lock taken over safely, a forced one left alone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from dataclasses import asdict, replace
from datetime import timedelta

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import lock
from mwaa_elt.promote.apply import WORKERS
from mwaa_elt.promote.store import StageStore, make_client
from mwaa_elt.stage import Stage


def _other(dev: Stage) -> StageStore:
    return StageStore(dev, make_client("s3", dev.region))


def _plant(store: StageStore, info: lock.LockInfo) -> None:
    store.put(store.stage.lock_key, json.dumps(asdict(info)).encode())


def test_second_promoter_is_refused_naming_the_holder(store: StageStore, dev: Stage) -> None:
    other = _other(dev)
    with lock.stage_lock(store, "arn:alice on host (pid 1)") as held:
        with pytest.raises(
            ConfigError, match=r"stage dev is locked by arn:alice on host \(pid 1\) since"
        ):
            lock.acquire(other, "arn:bob")
        assert lock.read_lock(other) == held.info
    assert lock.read_lock(store) is None
    with lock.stage_lock(other, "arn:bob"):
        pass


def test_concurrent_promoters_never_both_hold_the_lock(endpoint: str, dev: Stage) -> None:
    contenders = 6
    barrier = threading.Barrier(contenders)
    won: list[str] = []
    refused: list[str] = []

    def contend(name: str) -> None:
        store = _other(dev)
        barrier.wait()
        try:
            lock.acquire(store, name)
            won.append(name)
        except ConfigError:
            refused.append(name)

    threads = [threading.Thread(target=contend, args=(f"p{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == contenders - 1
    assert lock.read_lock(_other(dev)).owner == won[0]


def test_lock_is_released_when_the_promotion_fails(store: StageStore) -> None:
    with pytest.raises(RuntimeError), lock.stage_lock(store, "arn:alice"):
        raise RuntimeError("boom")
    assert lock.read_lock(store) is None


def test_an_expired_lease_is_taken_over(store: StageStore) -> None:
    dead = lock.acquire(store, "arn:elsewhere", lease=timedelta(seconds=-1))
    _plant(store, replace(dead.info, host="another-host", pid=123))
    taken = lock.acquire(store, "arn:alice")
    assert taken.taken_over is not None and taken.taken_over.owner == "arn:elsewhere"
    assert lock.read_lock(store) == taken.info


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(store: StageStore) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True)  # fmt: skip
    live = lock.acquire(store, "arn:killed", lease=timedelta(hours=1))
    _plant(store, replace(live.info, host=socket.gethostname(), pid=int(finished.stdout)))
    taken = lock.acquire(store, "arn:alice")
    assert taken.taken_over is not None and taken.taken_over.owner == "arn:killed"


def test_a_live_holder_elsewhere_is_refused_until_forced(store: StageStore) -> None:
    live = lock.acquire(store, "arn:bob on ci-runner (pid 42)", lease=timedelta(hours=1))
    _plant(store, replace(live.info, host="ci-runner", pid=42))
    with pytest.raises(ConfigError, match=r"locked by arn:bob on ci-runner.*--force-unlock"):
        lock.acquire(store, "arn:alice")
    with lock.stage_lock(store, "arn:alice", force=True) as held:
        assert held.info.owner == "arn:alice" and held.taken_over is None
    assert lock.read_lock(store) is None


def test_renewing_extends_the_lease_and_notices_a_broken_lock(store: StageStore) -> None:
    held = lock.acquire(store, "arn:alice", lease=timedelta(seconds=30))
    first_expiry, first_etag = held.info.expires_at, held.etag
    assert lock.renew(store, held, lease=timedelta(hours=1))
    assert held.info.expires_at > first_expiry and held.etag != first_etag
    assert lock.read_lock(store) == held.info
    lock.force_unlock(store)
    theirs = lock.acquire(store, "arn:bob")
    assert not lock.renew(store, held) and held.lost
    assert lock.read_lock(store) == theirs.info


def test_release_leaves_a_lock_someone_else_took_after_force(store: StageStore) -> None:
    mine = lock.acquire(store, "arn:alice")
    lock.force_unlock(store)
    theirs = lock.acquire(store, "arn:bob")
    lock.release(store, mine)
    assert lock.read_lock(store) == theirs.info


def test_owner_names_caller_host_and_pid() -> None:
    owner = lock.lock_owner("arn:aws:iam::1:user/x")
    assert owner.startswith(f"arn:aws:iam::1:user/x on {socket.gethostname()} (pid ")


def test_a_promotion_whose_lock_was_broken_stops_before_its_next_write(
    store: StageStore, dev: Stage
) -> None:
    from promote_support import build, plan_for

    from mwaa_elt.promote.apply import apply_plan

    held = lock.acquire(store, "arn:alice")
    lock.force_unlock(store)
    lock.acquire(_other(dev), "arn:bob")
    assert not lock.renew(store, held) and held.lost
    plan = plan_for(store, [build(dev, "a")])
    with pytest.raises(ConfigError, match="broken by someone else") as raised:
        apply_plan(store, plan, guard=lambda: lock.check_held(store, held))
    assert "stage dev is as it was" in raised.value.messages[-1]
    assert store.load_manifest()[1] is None


def test_ctrl_c_during_apply_says_what_is_live(store: StageStore, dev: Stage) -> None:
    from promote_support import build, plan_for

    from mwaa_elt.promote.apply import apply_plan
    from mwaa_elt.promote.plan import WriteDag

    plan = plan_for(store, [build(dev, "a"), build(dev, "b")])
    dags = [i for i, step in enumerate(plan.steps) if isinstance(step, WriteDag)]
    calls = iter(range(len(plan.steps)))

    def interrupt_before_second_dag() -> None:
        if next(calls) == dags[1]:
            raise KeyboardInterrupt

    with pytest.raises(ConfigError) as raised:
        apply_plan(store, plan, guard=interrupt_before_second_dag)
    assert raised.value.messages[0] == "interrupted"
    assert (
        "already wrote dags/a.py, which the manifest does not record yet"
        in raised.value.messages[1]
    )


def test_every_write_proves_ownership_and_parallel_writers_share_one_proof(
    store: StageStore, dev: Stage, recorder
) -> None:
    held = lock.acquire(store, "arn:alice")
    now = [held.verified_at + lock.FENCE_SECONDS * 2]  # the proof at acquisition is stale
    recorder.calls.clear()
    barrier = threading.Barrier(16)

    def writer() -> None:
        barrier.wait()
        lock.check_held(store, held, clock=lambda: now[0])

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    proofs = [call for call in recorder.calls if call == ("HeadObject", dev.lock_key)]
    assert len(proofs) == 1  # sixteen writers, one conditional HEAD
    now[0] += lock.FENCE_SECONDS / 2
    lock.check_held(store, held, clock=lambda: now[0])
    assert recorder.calls.count(("HeadObject", dev.lock_key)) == 1  # still fresh
    now[0] += lock.FENCE_SECONDS
    lock.check_held(store, held, clock=lambda: now[0])
    assert recorder.calls.count(("HeadObject", dev.lock_key)) == 2  # stale: proved again


def test_a_broken_lock_stops_the_next_write_once_the_last_proof_is_older_than_the_fence(
    store: StageStore, dev: Stage
) -> None:
    held = lock.acquire(store, "arn:alice")
    now = [held.verified_at]
    lock.force_unlock(_other(dev))
    lock.acquire(_other(dev), "arn:bob")
    # The documented window: a proof younger than FENCE_SECONDS is trusted without a request.
    lock.check_held(store, held, clock=lambda: now[0] + lock.FENCE_SECONDS / 2)
    with pytest.raises(ConfigError, match="broken by someone else"):
        lock.check_held(store, held, clock=lambda: now[0] + lock.FENCE_SECONDS * 1.5)
    assert held.lost
    with pytest.raises(ConfigError):  # and every later write, without asking S3 again
        lock.check_held(store, held, clock=lambda: now[0])


def test_a_deleted_lock_fails_the_proof_as_a_replaced_one_does(store: StageStore) -> None:
    held = lock.acquire(store, "arn:alice")
    lock.force_unlock(store)
    with pytest.raises(ConfigError, match="broken by someone else"):
        lock.check_held(store, held, max_age=0)


def test_renewal_changes_the_etag_without_failing_the_proof(store: StageStore) -> None:
    held = lock.acquire(store, "arn:alice")
    assert lock.renew(store, held)
    lock.check_held(store, held, max_age=0)
    assert not held.lost and lock.read_lock(store) == held.info
    assert held.info.renewed_at != ""


def test_a_holder_is_alive_while_it_renews_and_not_once_it_stopped(store: StageStore) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    info = lock.LockInfo(
        owner="arn:bob on ci-runner (pid 42)",
        token="t",
        acquired_at=(now - timedelta(minutes=30)).isoformat(),
        expires_at=(now + timedelta(minutes=4)).isoformat(),
        host="ci-runner",
        pid=42,
        renewed_at=(now - timedelta(seconds=20)).isoformat(),
    )
    assert info.alive_reason(now) == "its holder renewed it 20 s ago"
    silent = replace(info, renewed_at=(now - timedelta(minutes=3)).isoformat())
    assert silent.alive_reason(now) is None  # missed two heartbeats: maybe gone
    expired = replace(info, expires_at=(now - timedelta(seconds=1)).isoformat())
    assert expired.alive_reason(now) is None
    _plant(store, info)
    found = lock.breaking_live_lock(store)
    assert found is not None and found[0] == info
    assert "stops it before its next write" in found[1]
    assert f"up to {WORKERS} objects" in found[1]


def test_force_unlock_breaks_only_the_lock_the_user_agreed_to_break(store: StageStore) -> None:
    first = lock.acquire(store, "arn:alice")
    lock.force_unlock(store)
    second = lock.acquire(store, "arn:bob")
    assert lock.force_unlock(store, token=first.info.token) is None
    assert lock.read_lock(store) == second.info
    assert lock.force_unlock(store, token=second.info.token) == second.info
    assert lock.read_lock(store) is None


def test_a_dead_holders_lock_is_cleared_by_a_run_with_nothing_to_write(store: StageStore) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    stale = lock.acquire(store, "arn:bob")
    _plant(store, replace(stale.info, pid=int(dead.stdout)))
    cleared = lock.clear_stale(store, "arn:alice")
    assert cleared is not None and cleared.pid == int(dead.stdout)
    assert lock.read_lock(store) is None
    live = lock.acquire(store, "arn:carol", lease=timedelta(hours=1))
    assert lock.clear_stale(store, "arn:alice") is None  # a live lock is left alone
    assert lock.read_lock(store) == live.info
