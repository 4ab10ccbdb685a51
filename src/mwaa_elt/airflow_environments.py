"""Local Python environments that reproduce MWAA's image for one Airflow version.

`.venv-airflow-<version>` holds what MWAA's image installs for that version (its Airflow extras,
`apache-airflow-providers-amazon[aiobotocore]`, the providers MWAA preinstalls) plus the stages'
`infra/environment/requirements.txt` and `requirements-airflow<major>.txt` of its line, resolved
under MWAA's own constraints, on the image's Python, from a lock file with hashes
(`requirements/mwaa/<version>/environment.lock`). DAG checks, local runs and upgrade rehearsals
all use these environments.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mwaa_elt.airflow_versions import MWAA_PREINSTALLED_PROVIDERS
from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.mwaa_images import TOOL_ROOT, MwaaImage, canonical, mwaa_image

# What the image installs that a local environment leaves out, and why. Both serve only the
# image's own services: Celery's SQS transport (pycurl, brought by celery's [sqs] extra) and the
# Postgres metadata database (psycopg2, built from source). A local environment runs DAGs with
# SQLite and no Celery workers; the postgres provider still brings psycopg2-binary.
LEFT_OUT = {
    "pycurl": "Celery's SQS transport on MWAA's workers; needs libcurl headers to build",
    "psycopg2": "the driver of MWAA's Postgres metadata database; built from source",
}
_EXTRA_LEFT_OUT = {"celery[sqs]": "celery"}
ENVIRONMENT_REQUIREMENTS = TOOL_ROOT / "infra" / "environment" / "requirements.txt"
_STAMP = ".installed"


@dataclass(frozen=True)
class AirflowEnvironment:
    """Where the environment of one Airflow version lives and what it is built from."""

    image: MwaaImage
    root: Path

    @property
    def version(self) -> str:
        return self.image.airflow_version

    @property
    def path(self) -> Path:
        return self.root / f".venv-airflow-{self.version}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def requirements_in(self) -> Path:
        return self.image.folder / "environment.in"

    @property
    def lock_file(self) -> Path:
        return self.image.folder / "environment.lock"

    @property
    def stamp(self) -> Path:
        return self.path / _STAMP


def uv_binary() -> Path:
    """The uv that the tool's own environment installs (requirements/tool.lock)."""
    try:
        from uv import find_uv_bin
    except ImportError as error:
        raise ConfigError(
            "uv is not installed in the tool's environment; run `make setup`"
        ) from error
    return Path(find_uv_bin())


def environment(airflow_version: str, root: Path = TOOL_ROOT) -> AirflowEnvironment:
    return AirflowEnvironment(image=mwaa_image(airflow_version), root=root)


def override_variable(airflow_version: str) -> str:
    """The variable that points checks at another interpreter for `airflow_version`."""
    return "MWAA_ELT_AIRFLOW_PYTHON_" + airflow_version.replace(".", "_")


def airflow_python(airflow_version: str, root: Path | None = None) -> Path:
    """The Python of the environment of `airflow_version`; a ConfigError says how to build it."""
    variable = override_variable(airflow_version)
    explicit = os.environ.get(variable)
    if explicit:
        python = Path(explicit)
        if not python.is_file():
            raise ConfigError(f"${variable}={explicit}: no such Python interpreter")
        return python
    # A project's own environments first (`make airflow-envs` in it), then the tool's.
    folders = dict.fromkeys([root or TOOL_ROOT, TOOL_ROOT])
    envs = [environment(airflow_version, folder) for folder in folders]
    for env in envs:
        if env.stamp.is_file():
            return env.python
    raise ConfigError(
        f"{envs[-1].path}: the environment of MWAA's Airflow {airflow_version} image is missing; "
        f"run `make airflow-envs` in {envs[-1].root} (or set ${variable})"
    )


def requirements_text(env: AirflowEnvironment) -> str:
    """The top-level requirements of the environment, as `environment.in` records them."""
    lines = [
        f"# What MWAA's Airflow {env.version} image installs, plus infra/environment/"
        "requirements.txt;",
        "# written by `make lock` from requirements/mwaa/<version>/ (see airflow_environments.py).",
    ]
    seen: set[str] = set()
    for requirement in _requirements(env):
        if requirement not in seen:
            seen.add(requirement)
            lines.append(requirement)
    return "\n".join(lines) + "\n"


def _requirements(env: AirflowEnvironment) -> Iterable[str]:
    # Here, not at the top: finding an environment's interpreter (`airflow_python`) must not
    # import the stage model, so that `mwaa-elt` can start one before anything else.
    from mwaa_elt.infra.documents.environment_files import line_requirements_path

    for package in env.image.packages:
        package = _EXTRA_LEFT_OUT.get(package, package)
        if canonical(re.split(r"[\[=<>~!; ]", package, maxsplit=1)[0]) not in LEFT_OUT:
            yield package
    major = int(env.version.split(".")[0])
    yield from sorted(MWAA_PREINSTALLED_PROVIDERS[major])
    line_requirements = line_requirements_path(ENVIRONMENT_REQUIREMENTS, major)
    for source in (ENVIRONMENT_REQUIREMENTS, line_requirements):
        if source is line_requirements and not source.is_file():
            continue
        for line in source.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                yield line


def lock(env: AirflowEnvironment, uv: Path) -> None:
    """Resolve the environment under MWAA's constraints into `environment.lock`, with hashes."""
    env.requirements_in.write_text(requirements_text(env))
    _run(
        [
            str(uv), "pip", "compile", "--quiet", "--universal", "--generate-hashes",
            "--python-version", env.image.python_minor,
            "--custom-compile-command", "make lock",
            "--constraint", str(env.image.constraints_file),
            "--constraint", str(env.image.essential_constraints_file),
            str(env.requirements_in), "-o", str(env.lock_file),
        ],
        f"resolving the Airflow {env.version} environment",
        cwd=env.root,
    )  # fmt: skip


SYNC_OPTIONS = ("--require-hashes", "--compile-bytecode")


def is_current(env: AirflowEnvironment) -> bool:
    """True when the environment was built from the lock file as it is now."""
    return env.stamp.is_file() and env.stamp.read_text().strip() == _lock_digest(env)


def build(env: AirflowEnvironment, uv: Path) -> bool:
    """Build the environment from its lock unless it is current; True when it was (re)built."""
    if is_current(env):
        return False
    if not env.lock_file.is_file():
        raise ConfigError(f"{env.lock_file}: no lock for Airflow {env.version}; run `make lock`")
    python = find_python(env.image.python_minor)
    shutil.rmtree(env.path, ignore_errors=True)
    what = f"building the Airflow {env.version} environment"
    _run([str(uv), "venv", "--quiet", "--python", str(python), str(env.path)], what)
    pip = [str(uv), "pip"]
    target = ["--python", str(env.python)]
    # Byte-compiled at install: every DagBag probe starts a fresh interpreter that must not
    # write bytecode beside the DAG files it loads, so Airflow's own modules are read compiled.
    _run([*pip, "sync", "--quiet", *target, *SYNC_OPTIONS, str(env.lock_file)], what)
    _run([*pip, "check", "--quiet", *target], what)
    env.stamp.write_text(_lock_digest(env) + "\n")
    return True


def installed_versions(python: Path) -> dict[str, str]:
    """Every distribution installed in the environment of `python`, by canonical name."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ExternalError(f"{python}: cannot list installed packages: {done.stderr.strip()}")
    return {canonical(name): version for name, version in json.loads(done.stdout).items()}


def drift(image: MwaaImage, installed: dict[str, str]) -> list[str]:
    """Where `installed` differs from what MWAA's image pins, one line per package."""
    problems = []
    for name, version in sorted(installed.items()):
        pinned = image.essential_pins.get(name) or image.pins.get(name)
        if pinned is not None and pinned != version:
            problems.append(f"{name} {version} is installed; MWAA's image pins {pinned}")
    for package in image.packages:
        name = canonical(re.split(r"[\[=<>~!; ]", package, maxsplit=1)[0])
        if name not in installed and name not in LEFT_OUT:
            problems.append(f"{name} is missing; MWAA's image installs it")
    return problems


def find_python(minor: str) -> Path:
    """An interpreter of Python `minor` (e.g. "3.12"): `python<minor>` on PATH, then pyenv's."""
    candidates: list[Path] = []
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(Path(on_path))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = sorted(
        (pyenv_root / "versions").glob(f"{minor}.*"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.name)],
        reverse=True,
    )
    candidates += [path / "bin" / f"python{minor}" for path in versions]
    if sys.version.startswith(f"{minor}."):
        candidates.append(Path(sys.executable))
    for candidate in candidates:
        if _reports_minor(candidate, minor):
            return candidate
    raise ConfigError(
        f"Python {minor} is needed (MWAA's image runs it) and none was found: install it "
        f"(`pyenv install {minor}`, or your system's python{minor} package) so that "
        f"`python{minor}` is on PATH or under $(pyenv root)/versions/"
    )


def _reports_minor(python: Path, minor: str) -> bool:
    if not python.is_file():
        return False
    done = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == minor


def _lock_digest(env: AirflowEnvironment) -> str:
    """The lock file and how it is installed: an environment built otherwise is rebuilt."""
    recipe = " ".join(SYNC_OPTIONS).encode()
    return hashlib.sha256(env.lock_file.read_bytes() + b"\0" + recipe).hexdigest()


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise ExternalError(f"{what} failed (exit {done.returncode}):\n{tail}")
