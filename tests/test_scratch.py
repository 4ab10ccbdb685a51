"""Scratch folders: in memory when the system has room there, else where `tempfile` says."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from mwaa_elt import scratch
from mwaa_elt.scratch import memory_folder, scratch_folder

MIB = 1024 * 1024


@pytest.fixture
def roomy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A writable folder reporting 100 MiB free, with no temporary folder chosen."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)
    tempfile.gettempdir()  # as any earlier temporary file does: `tempfile` caches its choice
    real = os.statvfs

    def statvfs(path: os.PathLike[str] | str) -> object:
        if Path(path) == tmp_path:
            return SimpleNamespace(f_bavail=100 * MIB // 4096, f_frsize=4096)
        return real(path)

    monkeypatch.setattr(scratch.os, "statvfs", statvfs)
    return tmp_path


def test_the_memory_folder_is_used_with_room_for_twice_the_files_beside_a_margin(
    roomy: Path,
) -> None:
    assert memory_folder(30 * MIB, roomy) == str(roomy)  # 60 MiB + 32 MiB of 100
    assert memory_folder(35 * MIB, roomy) is None  # 70 + 32 > 100: a container's small /dev/shm


def test_the_users_choice_of_temporary_folder_wins(
    roomy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(name, str(tmp_path))
        assert memory_folder(1, roomy) is None
        monkeypatch.delenv(name)
    assert memory_folder(1, roomy) == str(roomy)


def test_no_memory_folder_means_the_default_place(roomy: Path) -> None:
    assert memory_folder(1, roomy / "missing") is None


@pytest.mark.skipif(not scratch.MEMORY_FOLDER.is_dir(), reason="no /dev/shm on this system")
def test_a_scratch_folder_lives_in_memory_when_it_fits_and_is_removed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)
    if memory_folder(10 * 4096) is None:
        pytest.skip("/dev/shm has no room to spare here")
    with scratch_folder("mwaa-elt-test-", [100] * 10) as folder:
        assert Path(folder).parent == scratch.MEMORY_FOLDER
        (Path(folder) / "dag.py").write_text("x = 1\n")
    assert not Path(folder).exists()
    monkeypatch.setenv("TMPDIR", tempfile.gettempdir())
    with scratch_folder("mwaa-elt-test-", [100]) as folder:
        assert Path(folder).parent != scratch.MEMORY_FOLDER
