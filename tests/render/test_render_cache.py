"""The render record: a re-render redoes exactly the pipelines whose inputs changed, and its
output is always byte for byte a full render's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mwaa_elt
from mwaa_elt.cli import app
from mwaa_elt.errors import ConfigError
from mwaa_elt.render import cache as render_cache
from mwaa_elt.render.cache import environment_key, record_path
from mwaa_elt.render.imports import imported_modules
from mwaa_elt.stage import load_all_stages

runner = CliRunner()
ALL = ["movielens_emr", "movielens_scifi", "scifi_quality"]


@pytest.fixture
def project(scratch_project: Path, project_root: Path) -> Path:
    shutil.copytree(project_root / "pipelines", scratch_project / "pipelines")
    shutil.copytree(project_root / "dag_templates", scratch_project / "dag_templates")
    return scratch_project


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def render(project: Path, *args: str) -> dict[str, Any]:
    """`mwaa-elt render --stage dev --json` in `project`; fails the test on an error."""
    result = runner.invoke(app, ["render", "--stage", "dev", "--json", "-C", str(project), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def render_error(project: Path, *args: str) -> list[str]:
    result = runner.invoke(app, ["render", "--stage", "dev", "-C", str(project), *args])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError), result.output
    return result.exception.messages


def assert_same_as_full_render(project: Path) -> None:
    """The folder the record helped fill equals a render that trusts nothing."""
    full = project / "build" / "full"
    render(project, "--force", "--out", str(full))
    assert tree(project / "build" / "dev") == tree(full)


def append(path: Path, text: str) -> None:
    path.write_bytes(path.read_bytes() + text.encode())


def test_first_render_does_everything_then_an_unchanged_project_is_not_redone(project):
    first = render(project)
    assert first["rendered"] == ALL and first["reused"] == []
    before = {p: p.stat().st_mtime_ns for p in (project / "build" / "dev").rglob("*")}

    again = render(project)

    assert again["rendered"] == [] and again["reused"] == ALL
    assert again["written"] == [] and again["removed"] == []
    assert [p["content_hash"] for p in again["pipelines"]] == [
        p["content_hash"] for p in first["pipelines"]
    ]
    assert {p: p.stat().st_mtime_ns for p in (project / "build" / "dev").rglob("*")} == before
    assert_same_as_full_render(project)


def test_an_edited_sql_file_rerenders_only_its_pipeline(project):
    render(project)
    append(project / "pipelines/movielens_scifi/sql/create_scifi.sql", "\n-- reviewed\n")

    again = render(project)

    assert again["rendered"] == ["movielens_scifi"]
    assert again["reused"] == ["movielens_emr", "scifi_quality"]
    assert again["written"] == ["dags/movielens_scifi.py"]
    assert "-- reviewed" in (project / "build/dev/dags/movielens_scifi.py").read_text()
    assert_same_as_full_render(project)


def test_an_edited_script_rerenders_only_its_pipeline_under_a_new_key(project):
    first = render(project)
    append(project / "pipelines/movielens_emr/scripts/top_rated.py", "\n# reviewed\n")

    again = render(project)

    assert again["rendered"] == ["movielens_emr"]
    old_script = [p for p in first["written"] if p.endswith("top_rated.py")]
    assert again["removed"] == old_script
    assert any(p.endswith("top_rated.py") for p in again["written"])
    assert_same_as_full_render(project)


def test_an_edited_spec_rerenders_only_its_pipeline(project):
    render(project)
    spec = project / "pipelines/scifi_quality/scifi_quality.yaml"
    spec.write_text(spec.read_text().replace("retries: 1", "retries: 2"))

    again = render(project)

    assert again["rendered"] == ["scifi_quality"]
    assert again["written"] == ["dags/scifi_quality.py"]
    assert_same_as_full_render(project)


@pytest.mark.parametrize(
    "edit",
    ["dag_templates/dag.py.j2", "stacks/Pulumi.dev.yaml", "stacks/Pulumi.prod.yaml", "Pulumi.yaml"],
)
def test_an_edited_shared_file_rerenders_every_pipeline(project, edit):
    # A prod stack file counts for a dev render too: validation checks specs against every stage.
    render(project)
    append(project / edit, "\n# reviewed\n")

    again = render(project)

    assert again["rendered"] == ALL and again["reused"] == []
    assert_same_as_full_render(project)


def test_a_new_mwaa_elt_version_rerenders_every_pipeline(project, monkeypatch):
    render(project)
    real = render_cache._version
    monkeypatch.setattr(
        render_cache, "_version", lambda name: "9.9.9" if name == "mwaa-elt" else real(name)
    )

    assert render(project)["rendered"] == ALL


def test_a_change_to_the_mwaa_elt_code_changes_the_shared_key(project, tmp_path, monkeypatch):
    stages = load_all_stages(project / "stacks")

    def key() -> str:
        return environment_key(
            stages["dev"],
            project / "dag_templates",
            project / "stacks",
            project,
            project / "build" / "dev",
        )

    package = tmp_path / "package"
    shutil.copytree(Path(mwaa_elt.__file__).parent, package)
    monkeypatch.setattr(mwaa_elt, "__file__", str(package / "__init__.py"))
    before = key()
    append(package / "render" / "view.py", "\n# changed\n")

    assert key() != before


def test_a_deleted_spec_removes_its_dag_and_redoes_nothing_else(project):
    render(project)
    shutil.rmtree(project / "pipelines/scifi_quality")

    again = render(project)

    assert again["rendered"] == [] and again["reused"] == ["movielens_emr", "movielens_scifi"]
    assert again["removed"] == ["dags/scifi_quality.py"]
    assert_same_as_full_render(project)


def test_a_new_spec_is_the_only_one_rendered(project):
    render(project)
    folder = project / "pipelines/scifi_quality_eu"
    shutil.copytree(project / "pipelines/scifi_quality", folder)
    spec = folder / "scifi_quality.yaml"
    spec.rename(folder / "scifi_quality_eu.yaml")
    text = (folder / "scifi_quality_eu.yaml").read_text()
    (folder / "scifi_quality_eu.yaml").write_text(
        text.replace("pipeline: scifi_quality", "pipeline: scifi_quality_eu")
    )

    again = render(project)

    assert again["rendered"] == ["scifi_quality_eu"]
    assert again["reused"] == ALL
    assert again["written"] == ["dags/scifi_quality_eu.py"]
    assert_same_as_full_render(project)


def test_deleting_a_producer_fails_on_its_unchanged_consumer_as_a_full_validation_does(project):
    render(project)
    before = tree(project / "build" / "dev")
    shutil.rmtree(project / "pipelines/movielens_scifi")

    messages = render_error(project)

    assert messages == render_error(project, "--force")
    assert any("scifi_quality.yaml" in m and "no pipeline 'movielens_scifi'" in m for m in messages)
    assert tree(project / "build" / "dev") == before  # nothing written


def test_a_new_spec_reusing_a_cached_dag_id_fails_as_a_full_validation_does(project):
    render(project)
    shutil.copy(
        project / "pipelines/movielens_scifi/movielens_scifi.yaml",
        project / "pipelines/movielens_scifi.yaml",
    )
    (project / "pipelines/sql").mkdir()  # the copy's sql_file paths resolve beside it
    for sql in (project / "pipelines/movielens_scifi/sql").iterdir():
        shutil.copy(sql, project / "pipelines/sql" / sql.name)

    messages = render_error(project)

    assert messages == render_error(project, "--force")
    assert any("DAG ids must be unique" in m for m in messages)


def test_a_damaged_output_file_is_rendered_again(project):
    render(project)
    dag = project / "build/dev/dags/movielens_emr.py"
    good = dag.read_bytes()
    dag.write_bytes(good + b"# hand edit\n")

    again = render(project)

    assert again["rendered"] == ["movielens_emr"] and again["written"] == ["dags/movielens_emr.py"]
    assert dag.read_bytes() == good


def test_rendering_a_selection_keeps_the_record_right_for_the_next_full_render(project):
    render(project)
    only = render(project, "movielens_emr")
    assert only["reused"] == ["movielens_emr"] and only["rendered"] == []
    assert only["removed"] == []  # the other pipelines' output stays
    assert (project / "build/dev/dags/movielens_scifi.py").is_file()

    everything = render(project)

    assert everything["rendered"] == ["movielens_scifi", "scifi_quality"]
    assert everything["reused"] == ["movielens_emr"]
    assert_same_as_full_render(project)


CURRENT = render_cache.RECORD_FORMAT
FORMAT = f'"format":{CURRENT}'


def record_file(project: Path) -> Path:
    return record_path(project / "build" / ".cache", "dev", project / "build" / "dev")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "\x00garbage\xff", id="garbage"),
        pytest.param(lambda text: "[]", id="a list"),
        pytest.param(lambda text: text.replace(FORMAT, f'"format":"{CURRENT}"'), id="a string"),
        pytest.param(lambda text: text.replace(FORMAT, f'"format":{CURRENT - 1}'), id="older"),
        pytest.param(lambda text: text.replace('"inputs":"', '"inputs":7,"x":"'), id="bad type"),
        pytest.param(lambda text: text.replace('"dag_imports":[', '"x":['), id="no imports"),
        pytest.param(
            lambda text: text.replace('"dags/movielens_emr.py"', '"../../outside.py"'),
            id="path outside the folder",
        ),
    ],
)
def test_a_damaged_record_is_ignored_and_replaced(project, damage):
    render(project)
    path = record_file(project)
    path.write_text(damage(path.read_text()), encoding="utf-8", errors="surrogateescape")

    again = render(project)

    assert again["rendered"] == ALL and again["written"] == []
    assert json.loads(path.read_text())["format"] == render_cache.RECORD_FORMAT
    assert render(project)["reused"] == ALL


def test_a_file_swapped_for_a_symlink_with_the_same_bytes_is_validated_again(project):
    # Validation refuses a referenced file that is a symbolic link, wherever it points.
    render(project)
    sql = project / "pipelines/movielens_scifi/sql/create_scifi.sql"
    outside = project / "elsewhere.sql"
    shutil.copy(sql, outside)
    sql.unlink()
    os.symlink(outside, sql)

    messages = render_error(project)

    assert any("sql/create_scifi.sql is a symbolic link" in m for m in messages)


def test_a_link_added_beside_a_trusted_spec_is_validated_again(project):
    # Validation refuses a link anywhere in a pipeline's folder, referenced or not: the record
    # must not trust a spec whose folder gained one.
    render(project)
    os.symlink("/etc/passwd", project / "pipelines/movielens_scifi/notes.txt")

    messages = render_error(project)

    assert any("notes.txt is a symbolic link (to /etc/passwd)" in m for m in messages)


def test_force_ignores_the_record(project):
    render(project)
    assert render(project, "--force")["rendered"] == ALL


def test_a_file_edited_while_rendering_is_rendered_again_next_time(project, monkeypatch):
    # The record keeps a spec only if its inputs hash the same after rendering as before.
    from mwaa_elt.render import generate

    real = generate.render_pipelines
    sql = project / "pipelines/movielens_scifi/sql/create_scifi.sql"

    def saved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        append(sql, "\n-- saved during the render\n")
        return result

    monkeypatch.setattr(generate, "render_pipelines", saved_meanwhile)
    render(project)
    monkeypatch.setattr(generate, "render_pipelines", real)

    again = render(project)

    assert again["rendered"] == ["movielens_scifi"]
    assert "saved during the render" in (project / "build/dev/dags/movielens_scifi.py").read_text()


def _kept(project: Path) -> dict[str, str]:
    """What `kept_renders` (a promotion's view of the records) takes for stage dev: each
    pipeline's DAG file, by name."""
    from mwaa_elt.spec.folder import discover_specs

    stages = load_all_stages(project / "stacks")
    kept = render_cache.kept_renders(
        discover_specs(project / "pipelines"),
        stages["dev"],
        templates_dir=project / "dag_templates",
        stacks_dir=project / "stacks",
        project_root=project,
        cache_dir=project / "build" / ".cache",
    )
    return {k.summary.name: k.files[k.rendered.dag_path].decode() for k in kept.values()}


def test_a_promotion_takes_each_pipeline_from_any_render_that_still_vouches_for_it(project):
    first, second = project / "build" / "one", project / "build" / "two"
    render(project, "--out", str(first))
    render(project, "--out", str(second))
    dags = {name: (first / f"dags/{name}.py").read_text() for name in ALL}
    assert _kept(project) == dags

    # The newer render's file was edited by hand: the older render still vouches for it.
    append(second / "dags/movielens_emr.py", "# edited\n")
    assert _kept(project) == dags
    # Edited in both folders: neither does.
    append(first / "dags/movielens_emr.py", "# edited\n")
    assert sorted(_kept(project)) == ["movielens_scifi", "scifi_quality"]
    # A record under another folder's name is not that folder's record.
    shutil.rmtree(first)
    assert sorted(_kept(project)) == ["movielens_scifi", "scifi_quality"]
    record = record_path(project / "build" / ".cache", "dev", second)
    record.rename(record.with_name("render-dev-0123456789abcdef.json"))
    assert _kept(project) == {}


def test_the_record_keeps_the_modules_each_dag_file_imports_for_the_package_gate(project):
    render(project)
    from mwaa_elt.spec.folder import discover_specs

    kept = render_cache.kept_renders(
        discover_specs(project / "pipelines"),
        load_all_stages(project / "stacks")["dev"],
        templates_dir=project / "dag_templates",
        stacks_dir=project / "stacks",
        project_root=project,
        cache_dir=project / "build" / ".cache",
    )
    assert sorted(k.summary.name for k in kept.values()) == ALL
    for k in kept.values():
        # Read from the text before ruff formatted it; the same as the file's own imports.
        assert k.rendered.dag_imports == imported_modules(k.files[k.rendered.dag_path])
        assert "airflow.sdk" in k.rendered.dag_imports


@pytest.mark.parametrize(
    ("head", "tail"),
    [
        ("", "\ndef broken(:\n"),  # after the imports: ruff refuses it, the render says where
        ("", "\n# a NUL byte: \x00\n"),  # which ruff would let pass
        ("def broken(:\n", ""),  # before the imports: found while reading them
    ],
)
def test_a_template_that_makes_invalid_python_is_an_error_and_writes_nothing(project, head, tail):
    template = project / "dag_templates" / "dag.py.j2"
    template.write_text(head + template.read_text() + tail)
    messages = render_error(project)
    assert len(messages) == len(ALL)
    assert all("the DAG template made invalid Python" in m for m in messages)
    assert "fix the template" in messages[0]
    assert not (project / "build" / "dev").exists()
