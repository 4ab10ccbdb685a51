"""Source bundles: deterministic, content-addressed, safely read back."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.bundle import build_bundle, pack, read_bundle

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


def test_read_bundle_restores_the_folder_and_removes_it_afterwards(tmp_path: Path) -> None:
    bundle = build_bundle(_folder(tmp_path))
    with read_bundle(bundle.data, expected_hash=bundle.source_hash) as root:
        assert (root / "sql" / "load.sql").read_text() == "select 1\n"
        assert not (root / "__pycache__").exists()
        assert build_bundle(root) == bundle
    assert not root.exists()


def test_read_bundle_refuses_a_bundle_whose_hash_does_not_match(tmp_path: Path) -> None:
    bundle = build_bundle(_folder(tmp_path))
    with (
        pytest.raises(ConfigError, match="corrupt or was replaced"),
        read_bundle(bundle.data, expected_hash="0" * 64),
    ):
        pass


def test_read_bundle_refuses_members_escaping_the_folder() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.sql")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ConfigError, match="escapes"), read_bundle(raw.getvalue()):
        pass


def test_an_example_pipeline_round_trips() -> None:
    folder = ROOT / "pipelines" / "movielens_emr"
    bundle = build_bundle(folder)
    with read_bundle(bundle.data, expected_hash=bundle.source_hash) as root:
        assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(
            p.name for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    assert pack({}).source_hash != bundle.source_hash
