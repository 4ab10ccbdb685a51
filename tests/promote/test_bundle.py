"""Source bundles: deterministic, content-addressed, safely read back."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import build_bundle, pack, unpack_verified
from mwaa_elt.promote.sources import write_files

ROOT = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sales"
    (folder / "sql").mkdir(parents=True)
    (folder / "sales.yaml").write_text("name: sales\n")
    (folder / "sql" / "load.sql").write_text("select 1\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"junk")
    return folder


def test_bundle_is_byte_identical_whatever_the_mtimes(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = build_bundle(folder)
    os.utime(folder / "sales.yaml", (1, 1))
    second = build_bundle(folder)
    assert first == second
    assert len(first.source_hash) == 64


def test_bundle_hash_changes_with_content_and_ignores_bytecode(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = build_bundle(folder)
    (folder / "__pycache__" / "y.pyc").write_bytes(b"more junk")
    assert build_bundle(folder).source_hash == before.source_hash
    (folder / "sql" / "load.sql").write_text("select 2\n")
    assert build_bundle(folder).source_hash != before.source_hash


def test_an_unpacked_bundle_written_out_is_the_folder_again(tmp_path: Path) -> None:
    bundle = build_bundle(_folder(tmp_path))
    root = tmp_path / "restored"
    write_files(unpack_verified(bundle.data, bundle.source_hash), root)
    assert (root / "sql" / "load.sql").read_text() == "select 1\n"
    assert not (root / "__pycache__").exists()
    assert build_bundle(root) == bundle


def test_a_bundle_whose_hash_does_not_match_is_refused(tmp_path: Path) -> None:
    bundle = build_bundle(_folder(tmp_path))
    with pytest.raises(ConfigError, match="corrupt or was replaced"):
        unpack_verified(bundle.data, "0" * 64)


def test_members_escaping_the_folder_are_refused() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.sql")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ConfigError, match="escapes"):
        unpack_verified(raw.getvalue(), None)


def test_an_example_pipeline_round_trips() -> None:
    folder = ROOT / "pipelines" / "movielens_emr"
    bundle = build_bundle(folder)
    files = unpack_verified(bundle.data, bundle.source_hash)
    assert sorted(PurePosixPath(name).name for name in files) == sorted(
        p.name for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    assert pack({}).source_hash != bundle.source_hash
