"""The check environments are MWAA's own: same packages, same pins, same Python as its image."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from airflow_lines import AIRFLOW_VERSION

from mwaa_elt import airflow_environments
from mwaa_elt.airflow_environments import (
    LEFT_OUT,
    drift,
    environment,
    find_python,
    installed_versions,
    requirements_text,
)
from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES
from mwaa_elt.errors import ConfigError
from mwaa_elt.mwaa_images import canonical, mwaa_image, vendored_versions

STAGE_VERSIONS = sorted(set(AIRFLOW_VERSION.values()))
_LOCKED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def test_every_release_mwaa_offers_has_its_image_and_python() -> None:
    assert set(MWAA_AIRFLOW_RELEASES) <= set(vendored_versions())
    for version, release in MWAA_AIRFLOW_RELEASES.items():
        assert release.python == mwaa_image(version).python_minor, version


def test_airflow_2_11_runs_python_3_12_as_on_mwaa() -> None:
    # The requirements.txt staging and prod upload names this Python's constraints file.
    assert MWAA_AIRFLOW_RELEASES["2.11.0"].constraints_url.endswith(
        "constraints-2.11.0/constraints-3.12.txt"
    )


@pytest.mark.parametrize("version", vendored_versions())
def test_lock_installs_exactly_what_mwaa_pins(version: str) -> None:
    env = environment(version)
    locked = {canonical(n): v for n, v in _LOCKED.findall(env.lock_file.read_text())}
    assert drift(env.image, locked) == []
    # Deferrable operators' triggers need aiobotocore, which MWAA's image installs.
    assert locked["aiobotocore"] == env.image.pins["aiobotocore"]
    assert locked["apache-airflow"] == version


@pytest.mark.parametrize("version", vendored_versions())
def test_lock_was_written_from_the_current_requirements(version: str) -> None:
    # infra/environment/requirements.txt or the image changed: `make lock` re-resolves.
    env = environment(version)
    assert env.requirements_in.read_text() == requirements_text(env)


def test_left_out_packages_are_named_with_a_reason() -> None:
    text = requirements_text(environment("3.0.6"))
    assert "celery\n" in text and "celery[sqs]" not in text
    for name in LEFT_OUT:
        assert not re.search(rf"^{name}\b", text, re.MULTILINE)


@pytest.mark.parametrize("version", STAGE_VERSIONS)
def test_built_environment_has_not_drifted_from_mwaa(version: str) -> None:
    env = environment(version)
    assert airflow_environments.is_current(env), "run `make airflow-envs`"
    installed = installed_versions(env.python)
    assert drift(env.image, installed) == []
    assert installed["apache-airflow"] == version
    assert "aiobotocore" in installed


def test_drift_names_each_package_that_differs() -> None:
    image = mwaa_image("3.0.6")
    installed = {"fastapi": "0.165.0", "starlette": image.pins["starlette"]}
    problems = drift(image, installed)
    assert f"fastapi 0.165.0 is installed; MWAA's image pins {image.pins['fastapi']}" in problems
    assert "apache-airflow is missing; MWAA's image installs it" in problems
    assert not any(p.startswith("starlette") for p in problems)


def _fake_python(path: Path, prints: str, status: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{prints}'\nexit {status}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_python_is_found_past_a_broken_shim_in_pyenv_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyenv's shim for python3.12 is on PATH but fails when 3.12 is not the selected version.
    _fake_python(tmp_path / "bin" / "python3.12", "pyenv: python3.12: command not found", 127)
    _fake_python(tmp_path / "pyenv/versions/3.12.2/bin/python3.12", "3.12")
    newest = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12", "3.12")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    assert find_python("3.12") == newest


def test_missing_python_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match=r"Python 3\.9 is needed .*`pyenv install 3\.9`"):
        find_python("3.9")
