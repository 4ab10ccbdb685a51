"""Which commit a promoted pipeline comes from, and whether its folder had uncommitted changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mwaa_elt.promote.builds import git_commits


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for relative in ("pipelines/alpha/alpha.yaml", "pipelines/beta/beta.yaml", "templates/a.j2"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(relative)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def _commits(repo: Path) -> dict[str, str | None]:
    folders = {name: repo / "pipelines" / name for name in ("alpha", "beta")}
    return git_commits(repo, folders, repo / "templates")


def test_untracked_files_elsewhere_leave_every_pipeline_clean(repo):
    head = _git(repo, "rev-parse", "HEAD").strip()
    for index in range(50):
        (repo / "build" / f"dir{index % 5}").mkdir(parents=True, exist_ok=True)
        (repo / "build" / f"dir{index % 5}" / f"f {index}.py").write_text("x")
    (repo / "pipelines" / "alphabet.txt").write_text("a sibling whose name starts like alpha")
    assert _commits(repo) == {"alpha": head, "beta": head}


def test_a_changed_or_untracked_file_marks_only_its_pipeline_dirty(repo):
    head = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "pipelines/alpha/alpha.yaml").write_text("edited")
    (repo / 'pipelines/beta/new "quoted" file.sql').write_text("select 1")
    assert _commits(repo) == {"alpha": f"{head}-dirty", "beta": f"{head}-dirty"}
    _git(repo, "checkout", "--", "pipelines/alpha/alpha.yaml")
    assert _commits(repo) == {"alpha": head, "beta": f"{head}-dirty"}


def test_a_rename_marks_both_sides_dirty(repo):
    head = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "mv", "pipelines/alpha/alpha.yaml", "elsewhere.yaml")
    assert _commits(repo) == {"alpha": f"{head}-dirty", "beta": head}


def test_changed_templates_mark_every_pipeline_dirty(repo):
    head = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "templates/a.j2").write_text("edited")
    assert _commits(repo) == {"alpha": f"{head}-dirty", "beta": f"{head}-dirty"}


def test_outside_a_repository_there_is_no_commit(tmp_path):
    (tmp_path / "templates").mkdir()
    assert git_commits(tmp_path, {"alpha": tmp_path}, tmp_path / "templates") == {"alpha": None}
