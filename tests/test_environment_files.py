"""requirements.txt, plugins.zip and the startup script: exact per stage, byte-stable, refused clearly."""

from __future__ import annotations

import importlib.util
import io
import os
import zipfile
from pathlib import Path

import pytest

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents.environment_files import (
    build_plugins_zip,
    build_requirements,
    package_names,
    read_startup_script,
)

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = ROOT / "infra" / "environment"
REQUIREMENTS = ENVIRONMENT / "requirements.txt"
CONSTRAINTS = "https://raw.githubusercontent.com/apache/airflow/constraints-{}/constraints-{}.txt"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def message_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(excinfo.value.messages)


# -- requirements.txt -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_name", "airflow", "python"),
    [("dev", "3.0.6", "3.12"), ("staging", "2.11.0", "3.12"), ("prod", "2.11.0", "3.12")],
)
def test_one_source_gives_each_stage_its_own_constraint_line(stages, stage_name, airflow, python):
    lines = build_requirements(stages[stage_name], REQUIREMENTS).decode().splitlines()
    assert lines[0] == f'--constraint "{CONSTRAINTS.format(airflow, python)}"'
    assert [line for line in lines if line.startswith(("--constraint", "-c"))] == [lines[0]]
    assert "apache-airflow-providers-amazon" in lines
    assert not any(line.startswith("#") or not line.strip() for line in lines)


def test_requirements_are_deterministic_and_ignore_comment_edits(stages, tmp_path):
    built = build_requirements(stages["prod"], REQUIREMENTS)
    assert built == build_requirements(stages["prod"], REQUIREMENTS)
    assert built.endswith(b"\n")
    edited = write(
        tmp_path / "requirements.txt",
        "# a new comment\n\n" + REQUIREMENTS.read_text().replace("\n", "  # note\n", 1) + "\n\n",
    )
    line_file = ENVIRONMENT / "requirements-airflow2.txt"
    write(tmp_path / line_file.name, "# edited\n" + line_file.read_text())
    assert build_requirements(stages["prod"], edited) == built


def test_a_package_change_changes_the_bytes(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", REQUIREMENTS.read_text() + "sqlparse>=0.5\n")
    built = build_requirements(stages["dev"], source)
    assert built != build_requirements(stages["dev"], REQUIREMENTS)
    assert built.decode().splitlines()[-1] == "sqlparse>=0.5"


def test_source_without_constraint_line_gets_the_stage_line(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "apache-airflow-providers-amazon\n")
    assert build_requirements(stages["dev"], source).decode() == (
        f'--constraint "{stages["dev"].airflow.constraints_url}"\napache-airflow-providers-amazon\n'
    )


def test_literal_constraint_line_for_the_stage_is_kept(stages, tmp_path):
    url = stages["staging"].airflow.constraints_url
    source = write(tmp_path / "requirements.txt", f"--constraint={url}\nboto3\n")
    assert build_requirements(stages["staging"], source).decode().splitlines() == [
        f'--constraint "{url}"',
        "boto3",
    ]


def test_supported_pip_options_pass_through(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "--find-links  /usr/local/airflow/plugins\nfoo\n")
    lines = build_requirements(stages["dev"], source).decode().splitlines()
    assert lines[1:] == ["--find-links /usr/local/airflow/plugins", "foo"]


def test_constraint_line_for_another_airflow_version_is_refused(stages, tmp_path):
    other = CONSTRAINTS.format("2.11.0", "3.11")
    source = write(tmp_path / "requirements.txt", f'# pinned\n--constraint "{other}"\nfoo\n')
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["dev"], source)
    message = message_of(excinfo)
    assert "requirements.txt: line 2: constraint file" in message
    assert "stage 'dev' (Airflow 3.0.6, Python 3.12)" in message
    assert "{airflow_version}" in message  # says how to write a line that fits every stage


def test_constraint_line_for_another_python_is_refused(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", f"-c {CONSTRAINTS.format('3.0.6', '3.11')}\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["dev"], source)
    assert "line 1: constraint file" in message_of(excinfo)
    assert "constraints-3.11.txt" in message_of(excinfo)


def test_second_constraint_line_is_refused(stages, tmp_path):
    line = f'--constraint "{CONSTRAINTS.format("{airflow_version}", "{python_version}")}"'
    source = write(tmp_path / "requirements.txt", f"{line}\nfoo\n{line}\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["prod"], source)
    assert excinfo.value.messages == [
        f"{source}: line 3: a second constraint line (the first is on line 1); keep at most one"
    ]


@pytest.mark.parametrize(
    "line", ["apache-airflow==2.11.0", "Apache_Airflow[amazon]>=2", "apache-airflow"]
)
def test_requiring_airflow_itself_is_refused(stages, tmp_path, line):
    source = write(tmp_path / "requirements.txt", f"foo\n{line}\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["prod"], source)
    assert excinfo.value.messages == [
        f"{source}: line 2: '{line}' requires Airflow itself; MWAA installs Airflow 2.11.0 and "
        "forbids replacing it: remove the line"
    ]


def test_unparsable_requirement_is_refused_with_its_line(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "foo\n\nbar==1.0 baz\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["dev"], source)
    message = message_of(excinfo)
    assert message.startswith(f"{source}: line 3: 'bar==1.0 baz' is not a requirement (")
    assert "such as apache-airflow-providers-amazon" in message


def test_unsupported_option_is_refused(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "-r other.txt\n-e ./local\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["dev"], source)
    assert [m.split(": ", 2)[1:] for m in excinfo.value.messages] == [
        ["line 1", "option -r is not supported on MWAA; allowed: --find-links, --index-url, "
         "--extra-index-url, --trusted-host"],
        ["line 2", "option -e is not supported on MWAA; allowed: --find-links, --index-url, "
         "--extra-index-url, --trusted-host"],
    ]  # fmt: skip


def test_every_problem_is_reported_at_once(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "apache-airflow\nnot a requirement!\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["dev"], source)
    assert [m.split(": ")[1] for m in excinfo.value.messages] == ["line 1", "line 2"]


def test_missing_requirements_file_is_refused(stages, tmp_path):
    with pytest.raises(ConfigError, match=r"requirements\.txt: cannot read"):
        build_requirements(stages["dev"], tmp_path / "requirements.txt")


def test_package_names_are_normalized_distribution_names():
    requirements = (
        b'--constraint "https://example.com/c.txt"\n'
        b"--find-links /usr/local/airflow/plugins\n"
        b"Apache_Airflow.Providers-Amazon>=9\n"
        b"# a comment\n"
        b'pyarrow[s3]; python_version >= "3.11"\n'
    )
    assert package_names(requirements) == {"apache-airflow-providers-amazon", "pyarrow"}


def test_package_names_of_a_built_file(stages):
    built = build_requirements(stages["dev"], REQUIREMENTS)
    assert package_names(built) == {
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-common-sql",
    }


def test_package_names_refuses_an_unparsable_line():
    with pytest.raises(ConfigError) as excinfo:
        package_names(b"foo\nbar baz\n")
    assert excinfo.value.messages[0].startswith("requirements.txt: line 2: 'bar baz'")


# -- plugins.zip ------------------------------------------------------------------------------

PLUGIN_FILES = {
    "acme/__init__.py": b"from acme.macros import today\n",
    "acme/macros.py": b"def today():\n    return 'today'\n",
    "acme/sql/report.sql": b"select 1\n",
    "README.md": b"plugins\n",
}


def make_plugins(root: Path, order: list[str], mode: int, mtime: int) -> Path:
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PLUGIN_FILES[name])
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


def test_plugins_zip_is_byte_identical_whatever_the_mtimes_order_and_modes(tmp_path):
    names = sorted(PLUGIN_FILES)
    first = make_plugins(tmp_path / "a", names, 0o644, 1_000_000_000)
    second = make_plugins(tmp_path / "b", list(reversed(names)), 0o600, 1_700_000_000)
    (second / "acme").chmod(0o700)
    third = make_plugins(tmp_path / "c", names[1:] + names[:1], 0o755, 1_234_567_890)
    built = build_plugins_zip(first)
    assert built == build_plugins_zip(second) == build_plugins_zip(third)
    assert built == build_plugins_zip(first)


def test_plugins_zip_entries_are_sorted_with_fixed_time_and_mode(tmp_path):
    root = make_plugins(tmp_path / "p", sorted(PLUGIN_FILES), 0o755, 1_700_000_000)
    with zipfile.ZipFile(io.BytesIO(build_plugins_zip(root))) as archive:
        entries = archive.infolist()
        assert [e.filename for e in entries] == sorted(PLUGIN_FILES)
        assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}
        assert {e.external_attr >> 16 for e in entries} == {0o100644}
        assert {name: archive.read(name) for name in archive.namelist()} == PLUGIN_FILES


def test_plugins_zip_leaves_out_caches_and_finder_files(tmp_path):
    root = make_plugins(tmp_path / "p", sorted(PLUGIN_FILES), 0o644, 1_700_000_000)
    clean = build_plugins_zip(root)
    (root / "acme" / "__pycache__").mkdir()
    (root / "acme" / "__pycache__" / "macros.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (root / "acme" / "stale.pyc").write_bytes(b"\x00bytecode")
    (root / ".DS_Store").write_bytes(b"\x00finder")
    (root / "acme" / ".DS_Store").write_bytes(b"\x00finder")
    assert build_plugins_zip(root) == clean


def test_plugins_zip_changes_when_a_file_does(tmp_path):
    root = make_plugins(tmp_path / "p", sorted(PLUGIN_FILES), 0o644, 1_700_000_000)
    before = build_plugins_zip(root)
    (root / "acme" / "sql" / "report.sql").write_bytes(b"select 2\n")
    changed = build_plugins_zip(root)
    (root / "acme" / "extra.py").write_bytes(b"")
    assert len({before, changed, build_plugins_zip(root)}) == 3


def test_missing_plugins_dir_is_refused(tmp_path):
    with pytest.raises(
        ConfigError, match="not a directory; expected the folder of Airflow plugins"
    ):
        build_plugins_zip(tmp_path / "plugins")


def test_project_plugins_package_the_platform_plugin():
    with zipfile.ZipFile(io.BytesIO(build_plugins_zip(ENVIRONMENT / "plugins"))) as archive:
        names = archive.namelist()
    assert names == ["mwaa_elt_plugins/__init__.py", "mwaa_elt_plugins/macros.py"]


def test_plugin_macros_render_partitions_and_safe_keys():
    spec = importlib.util.spec_from_file_location(
        "plugin_macros", ENVIRONMENT / "plugins" / "mwaa_elt_plugins" / "macros.py"
    )
    assert spec is not None and spec.loader is not None
    macros = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(macros)
    assert macros.hive_partition("2024-05-01") == "dt=2024-05-01"
    assert macros.hive_partition("2024-05-01", "day") == "day=2024-05-01"
    assert macros.s3_key_safe("scheduled__2024-05-01T00:00:00+00:00") == (
        "scheduled__2024-05-01T00-00-00-00-00"
    )


# -- startup script ---------------------------------------------------------------------------


def test_project_startup_script_is_accepted_unchanged():
    script = ENVIRONMENT / "startup.sh"
    content = read_startup_script(script)
    assert content == script.read_bytes()
    assert content.startswith(b"#!/bin/sh\n") and b"set -e" in content


@pytest.mark.parametrize("shebang", ["#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env bash"])
def test_sh_and_bash_shebangs_are_accepted(tmp_path, shebang):
    script = write(tmp_path / "startup.sh", f"{shebang}\nexport A=1\n")
    assert read_startup_script(script).startswith(shebang.encode())


def test_crlf_line_endings_are_refused_with_the_first_line(tmp_path):
    script = tmp_path / "startup.sh"
    script.write_bytes(b"#!/bin/sh\nset -e\nexport A=1\r\nexport B=2\r\n")
    with pytest.raises(ConfigError) as excinfo:
        read_startup_script(script)
    assert excinfo.value.messages == [
        f"{script}: line 3: Windows (CRLF) line ending; sh reads the CR as part of each command, "
        "save the file with LF line endings"
    ]


def test_missing_shebang_is_refused(tmp_path):
    script = write(tmp_path / "startup.sh", "set -e\nexport A=1\n")
    with pytest.raises(ConfigError) as excinfo:
        read_startup_script(script)
    assert excinfo.value.messages == [
        f"{script}: line 1: missing shebang; MWAA runs the script with sh, start it with "
        "#!/bin/sh (or #!/bin/bash)"
    ]


def test_other_interpreter_is_refused(tmp_path):
    script = write(tmp_path / "startup.sh", "#!/usr/bin/env python3\nprint('hi')\n")
    with pytest.raises(ConfigError, match="line 1: shebang runs 'python3'; MWAA runs the script"):
        read_startup_script(script)


def test_crlf_and_missing_shebang_are_reported_together(tmp_path):
    script = tmp_path / "startup.sh"
    script.write_bytes(b"\xef\xbb\xbf#!/bin/sh\r\n")  # a BOM hides the shebang from the kernel
    with pytest.raises(ConfigError) as excinfo:
        read_startup_script(script)
    assert [m.split(": ")[2].split(";")[0] for m in excinfo.value.messages] == [
        "missing shebang",
        "Windows (CRLF) line ending",
    ]


def test_missing_startup_script_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"startup\.sh: cannot read"):
        read_startup_script(tmp_path / "startup.sh")


# -- requirements of one Airflow line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_name", "has_dr"), [("dev", False), ("staging", True), ("prod", True)]
)
def test_mwaa_dr_is_installed_only_on_airflow_2_stages(stages, stage_name, has_dr):
    # dev runs Airflow 3 (mwaa-dr has no Airflow 3 factory); staging and prod run 2.11.0.
    built = build_requirements(stages[stage_name], REQUIREMENTS)
    assert ("mwaa-dr==2.2.0" in built.decode().splitlines()) is has_dr
    assert ("mwaa-dr" in package_names(built)) is has_dr


def test_line_requirements_follow_the_same_rules_and_name_their_file(stages, tmp_path):
    source = write(tmp_path / "requirements.txt", "apache-airflow-providers-amazon\n")
    write(tmp_path / "requirements-airflow2.txt", "mwaa-dr==2.2.0\napache-airflow==2.11.0\n")
    with pytest.raises(ConfigError) as excinfo:
        build_requirements(stages["prod"], source)
    assert "requirements-airflow2.txt: line 2: 'apache-airflow==2.11.0' requires Airflow" in (
        message_of(excinfo)
    )
    # A 3.x stage never reads the 2.x file, so its error cannot stop a 3.x build.
    assert b"mwaa-dr" not in build_requirements(stages["dev"], source)
