"""Folder hashes reused from a record of their files' metadata (`promote.hash_cache`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote import hash_cache
from mwaa_elt.promote.bundle import folder_content_hash
from mwaa_elt.promote.hash_cache import FILE_NAME, load_folder_hashes


@pytest.fixture
def settled(monkeypatch) -> None:
    """Files written by the test count as changed long before they are hashed, as files do
    outside a test; the racy rule is tested on its own."""
    monkeypatch.setattr(hash_cache, "RACY_NANOSECONDS", -10_000_000_000)


def _folder(root: Path, name: str = "sales") -> Path:
    folder = root / "pipelines" / name
    (folder / "sql").mkdir(parents=True)
    (folder / f"{name}.yaml").write_text(f"pipeline: {name}\n")
    (folder / "sql" / "load.sql").write_text("select 1\n")
    return folder


def _next_tick(path: Path) -> None:
    """Wait until the file system's clock has moved on from `path`'s change time."""
    changed = path.stat().st_ctime_ns
    probe = path.parent / ".tick"
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > changed:
            probe.unlink()
            return
        time.sleep(0.002)


def test_an_untouched_folder_is_not_read_again_even_in_the_next_process(
    tmp_path: Path, settled, monkeypatch
) -> None:
    folder = _folder(tmp_path)
    cache = tmp_path / "build" / ".cache"
    first = load_folder_hashes(cache)
    digest = first.content_hash(folder)
    assert digest == folder_content_hash(folder) and (first.hashed, first.reused) == (1, 0)
    first.save()

    read: list[Path] = []
    monkeypatch.setattr(hash_cache, "folder_content_hash", lambda path: read.append(path) or "")
    again = load_folder_hashes(cache)
    assert again.content_hash(folder) == digest
    assert (again.hashed, again.reused, read) == (0, 1, [])


@pytest.mark.parametrize(
    "change",
    [
        "same size, modification time put back",
        "file added",
        "file added in a new folder",
        "file removed",
        "file renamed",
    ],
)
def test_any_change_to_a_folder_is_hashed_anew(tmp_path: Path, settled, change: str) -> None:
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    record = load_folder_hashes(cache)
    record.content_hash(folder)
    record.save()
    sql = folder / "sql" / "load.sql"
    _next_tick(sql)
    if change == "same size, modification time put back":
        before = sql.stat()
        sql.write_text("select 2\n")
        os.utime(sql, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert sql.stat().st_mtime_ns == before.st_mtime_ns and sql.stat().st_size == before.st_size
    elif change == "file added":
        (folder / "sql" / "more.sql").write_text("select 3\n")
    elif change == "file added in a new folder":
        (folder / "sql" / "deeper").mkdir()
        (folder / "sql" / "deeper" / "more.sql").write_text("select 3\n")
    elif change == "file removed":
        sql.unlink()
    else:
        sql.rename(folder / "sql" / "other.sql")
    again = load_folder_hashes(cache)
    assert again.content_hash(folder) == folder_content_hash(folder)
    assert (again.hashed, again.reused) == (1, 0)


def test_a_folder_changed_just_before_it_was_hashed_is_not_recorded(tmp_path: Path) -> None:
    folder = _folder(tmp_path)  # written now: within the file system clock's reach
    cache = tmp_path / "cache"
    record = load_folder_hashes(cache)
    record.content_hash(folder)
    record.save()
    assert not (cache / FILE_NAME).exists()
    again = load_folder_hashes(cache)
    again.content_hash(folder)
    assert (again.hashed, again.reused) == (1, 0)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": 1}',
        '{"format": 1, "hash_format": 1, "mwaa-elt": "another", "folders": {}}',
        "recorded with another mwaa-elt",
        "recorded with another hash format",
        "a folder recorded as a number",
    ],
)
def test_a_record_that_is_unreadable_or_from_elsewhere_is_ignored(
    tmp_path: Path, settled, text: str
) -> None:
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    record = load_folder_hashes(cache)
    record.content_hash(folder)
    record.save()
    path = cache / FILE_NAME
    good = json.loads(path.read_text())
    if text == "recorded with another mwaa-elt":
        text = json.dumps({**good, "mwaa-elt": "0.0.1"})
    elif text == "recorded with another hash format":
        text = json.dumps({**good, "hash_format": good["hash_format"] + 1})
    elif text == "a folder recorded as a number":
        text = json.dumps({**good, "folders": {str(folder): 7}})
    path.write_text(text)
    again = load_folder_hashes(cache)
    assert again.content_hash(folder) == folder_content_hash(folder)
    assert (again.hashed, again.reused) == (1, 0)


def test_a_link_is_refused_whether_or_not_the_folder_was_recorded(tmp_path: Path, settled) -> None:
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    record = load_folder_hashes(cache)
    record.content_hash(folder)
    record.save()
    (folder / "sql" / "linked.sql").symlink_to(folder / "sql" / "load.sql")
    with pytest.raises(ConfigError, match="symbolic link"):
        load_folder_hashes(cache).content_hash(folder)


def test_saving_keeps_only_the_folders_seen_and_never_fails_the_caller(
    tmp_path: Path, settled
) -> None:
    kept, dropped = _folder(tmp_path, "kept"), _folder(tmp_path, "dropped")
    cache = tmp_path / "cache"
    record = load_folder_hashes(cache)
    record.content_hash(kept)
    record.content_hash(dropped)
    record.save()
    seen = load_folder_hashes(cache)
    seen.content_hash(kept)
    seen.save()
    assert set(json.loads((cache / FILE_NAME).read_text())["folders"]) == {str(kept)}

    unwritable = load_folder_hashes(tmp_path / "a file" / "cache")
    (tmp_path / "a file").write_text("")
    unwritable.content_hash(kept)
    unwritable.save()  # the folder cannot be created: nothing recorded, nothing raised
    assert (tmp_path / "a file").read_text() == ""


def test_without_a_record_nothing_is_written(tmp_path: Path, settled) -> None:
    folder = _folder(tmp_path)
    record = load_folder_hashes(None)
    assert record.content_hash(folder) == folder_content_hash(folder)
    record.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipelines"]


_names = st.sampled_from(["a.sql", "b.sql", "sql/c.sql", "sql/deep/d.hql", "e.py"])
_edits = st.lists(
    st.tuples(
        st.sampled_from(["write", "remove", "write, time put back"]),
        _names,
        st.binary(max_size=3),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(edits=_edits)
def test_the_record_never_answers_other_than_reading_the_folder(
    tmp_path_factory, edits: list[tuple[str, str, bytes]]
) -> None:
    """After any sequence of edits, each followed by a lookup that records the folder, the
    record answers exactly what reading the folder does. The file system's clock ticks between
    an edit and the lookup, which is what the racy rule guarantees outside tests."""
    root = tmp_path_factory.mktemp("edits")
    folder = _folder(root)
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hash_cache, "RACY_NANOSECONDS", -10_000_000_000)
        for action, name, data in edits:
            path = folder / name
            if action == "remove":
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                before = path.stat() if path.exists() else None
                path.write_bytes(data)
                if before is not None and action == "write, time put back":
                    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
            _next_tick(folder / "sales.yaml" if action == "remove" else path)
            record = load_folder_hashes(cache)
            assert record.content_hash(folder) == folder_content_hash(folder)
            record.save()
