"""write_render: all or nothing, exactly the current pipelines, unchanged files untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_elt.render import RenderResult, write_render
from mwaa_elt.render import files as render_files


def _result(files: dict[str, bytes]) -> RenderResult:
    return RenderResult(stage="dev", airflow_version="3.0.6", files=files, pipelines={})


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


OLD = {"dags/a.py": b"a = 1\n", "dags/b.py": b"b = 1\n", "scripts/a/123/x.hql": b"SELECT 1;\n"}


def test_first_write_creates_the_folder(tmp_path: Path) -> None:
    summary = write_render(_result(OLD), tmp_path / "build" / "dev")
    assert _tree(tmp_path / "build" / "dev") == OLD
    assert summary.written == tuple(OLD) and summary.unchanged == () and summary.removed == ()


def test_stale_files_are_removed_and_unchanged_counted(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    new = {"dags/a.py": b"a = 1\n", "dags/c.py": b"c = 1\n"}
    summary = write_render(_result(new), out)
    assert _tree(out) == new
    assert summary.written == ("dags/c.py",)
    assert summary.unchanged == ("dags/a.py",)
    assert summary.removed == ("dags/b.py", "scripts/a/123/x.hql")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]  # no staging left behind


def test_rendering_some_pipelines_keeps_the_others_output(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    # pipeline a re-rendered alone: its old script goes, b's DAG stays.
    summary = write_render(_result({"dags/a.py": b"a = 2\n"}), out, pipelines=["a"])
    assert _tree(out) == {"dags/a.py": b"a = 2\n", "dags/b.py": b"b = 1\n"}
    assert summary.written == ("dags/a.py",)
    assert summary.removed == ("scripts/a/123/x.hql",)


def test_nothing_changed_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    summary = write_render(_result(OLD), out)
    assert not summary.changed
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_failure_while_writing_leaves_old_output_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    calls = {"n": 0}
    real = Path.write_bytes

    def failing(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        write_render(_result({"dags/a.py": b"changed\n", "dags/z.py": b"z\n"}), out)
    assert _tree(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]


def test_failure_while_swapping_restores_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    monkeypatch.setattr(render_files, "_exchange", lambda a, b: False)  # the two-rename path
    real = Path.rename

    def failing(self: Path, target: Path) -> Path:
        if self.name.startswith(".dev.new-"):
            raise OSError("rename failed")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="rename failed"):
        write_render(_result({"dags/a.py": b"changed\n"}), out)
    assert _tree(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]


def test_paths_outside_the_folder_are_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    write_render(_result(OLD), out)
    with pytest.raises(ValueError, match="not a path inside"):
        write_render(_result({"../escape.py": b"x"}), out)
    assert _tree(out) == OLD and not (tmp_path / "escape.py").exists()
