"""Validation and rendering spread over worker processes give exactly the one-process result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("mwaa-elt"))
COPIES = 4  # of each example: 12 specs, several chunks per worker


@pytest.fixture
def project(scratch_project: Path, project_root: Path) -> Path:
    shutil.copytree(project_root / "dag_templates", scratch_project / "dag_templates")
    examples = sorted(p for p in (project_root / "pipelines").iterdir() if p.is_dir())
    for index in range(COPIES):
        for example in examples:
            name = f"{example.name}_{index}"
            folder = scratch_project / "pipelines" / name
            shutil.copytree(example, folder)
            text = (folder / f"{example.name}.yaml").read_text()
            (folder / f"{example.name}.yaml").unlink()
            text = text.replace(f"pipeline: {example.name}", f"pipeline: {name}")
            for other in examples:  # each copy waits for its own copy of the producer
                text = text.replace(f"after: [{other.name}.", f"after: [{other.name}_{index}.")
            (folder / f"{name}.yaml").write_text(text)
            for sql in folder.rglob("*.sql"):
                sql.write_text(sql.read_text() + f"\n-- copy {index}\n")
    return scratch_project


def run(project: Path, workers: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MWAA_ELT_WORKERS": str(workers)}
    return subprocess.run(
        [CLI, *args, "-C", str(project)], capture_output=True, text=True, env=env, check=False
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_two_workers_render_byte_identical_files(project):
    for workers in (1, 2):
        done = run(
            project,
            workers,
            "render",
            "--stage",
            "prod",
            "--force",
            "--out",
            str(project / f"out{workers}"),
        )
        assert done.returncode == 0, done.stderr
    serial, parallel = tree(project / "out1"), tree(project / "out2")
    assert len([p for p in serial if p.startswith("dags/")]) == 3 * COPIES
    assert parallel == serial


def test_two_workers_report_the_same_problems_at_the_same_places(project):
    broken = project / "pipelines/movielens_scifi_1/sql/create_scifi.sql"
    broken.write_text("SELEC 1\n")
    spec = project / "pipelines/scifi_quality_2/scifi_quality_2.yaml"
    spec.write_text(spec.read_text().replace("movielens_scifi_2.scifi", "movielens_scifi_9.scifi"))
    outcomes = [run(project, workers, "validate", "--format", "json") for workers in (1, 2)]
    assert [o.returncode for o in outcomes] == [1, 1]
    assert outcomes[0].stdout == outcomes[1].stdout
    assert "'SELEC' does not start Athena SQL" in outcomes[0].stdout
    assert "no pipeline 'movielens_scifi_9'" in outcomes[0].stdout
