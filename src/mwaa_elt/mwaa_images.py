"""What Amazon MWAA's image installs for an Airflow version, read from requirements/mwaa/<version>/.

The folders are copies of aws/amazon-mwaa-docker-images (`images/airflow/<version>/`): the
image's Python, the requirements it installs into its Airflow environment, Airflow's constraints
as MWAA pins them, and the "essential" pins a user's requirements.txt may not change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mwaa_elt.errors import ConfigError

TOOL_ROOT = Path(__file__).resolve().parents[2]
IMAGES_FOLDER = TOOL_ROOT / "requirements" / "mwaa"
# MWAA's requirements.txt lists the image's Airflow environment first, then the build tools of
# the image's own repository after this comment: those are not in the image's Airflow environment.
_DEVELOPMENT_MARKER = "# Additional packages for development"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class MwaaImage:
    """The Python packages and interpreter of MWAA's image for one Airflow version."""

    airflow_version: str
    python_version: str
    packages: tuple[str, ...]
    pins: dict[str, str]
    essential_pins: dict[str, str]
    folder: Path

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    @property
    def constraints_file(self) -> Path:
        return self.folder / "airflow_constraints.txt"

    @property
    def essential_constraints_file(self) -> Path:
        return self.folder / "mwaa_essential_constraints.txt"


def vendored_versions(folder: Path = IMAGES_FOLDER) -> list[str]:
    """The Airflow versions whose MWAA image is vendored, oldest first."""
    if not folder.is_dir():
        return []
    versions = [path.name for path in folder.iterdir() if (path / "python-version").is_file()]
    return sorted(versions, key=lambda version: tuple(int(part) for part in version.split(".")))


def mwaa_image(airflow_version: str, folder: Path = IMAGES_FOLDER) -> MwaaImage:
    """MWAA's image for `airflow_version`; ConfigError when it is not vendored."""
    image_folder = folder / airflow_version
    if not (image_folder / "python-version").is_file():
        raise ConfigError(
            f"{image_folder}: MWAA's image for Airflow {airflow_version} is not vendored; "
            f"expected one of {', '.join(vendored_versions(folder))} (copy images/airflow/"
            f"{airflow_version}/ of aws/amazon-mwaa-docker-images there)"
        )
    return MwaaImage(
        airflow_version=airflow_version,
        python_version=(image_folder / "python-version").read_text().strip(),
        packages=tuple(_image_packages(image_folder / "requirements.txt")),
        pins=_pins(image_folder / "airflow_constraints.txt"),
        essential_pins=_pins(image_folder / "mwaa_essential_constraints.txt"),
        folder=image_folder,
    )


def _image_packages(requirements: Path) -> list[str]:
    packages = []
    for line in requirements.read_text().splitlines():
        if line.startswith(_DEVELOPMENT_MARKER):
            break
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            packages.append(line)
    return packages


def _pins(constraints: Path) -> dict[str, str]:
    pins = {}
    for line in constraints.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins
