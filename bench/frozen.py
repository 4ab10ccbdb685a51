"""The mwaa-elt code every benchmark process runs: a compiled copy, frozen when the run starts.

The editable install would pick up edits made while a benchmark runs (and the render record and
a promotion's input digest count the code), mixing versions across repetitions. The copy is
byte-compiled as an installed package is: a machine that sets PYTHONDONTWRITEBYTECODE would
otherwise compile every module again in every process it measures.
"""

from __future__ import annotations

import compileall
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the package finds beside it in the checkout (mwaa_images.TOOL_ROOT): MWAA's images,
# the environment files and the built Airflow environments.
_BESIDE = ("requirements", "infra")


def frozen_package(scratch: Path) -> dict[str, str]:
    """Copy and compile src/mwaa_elt under `scratch`; the environment that imports the copy."""
    code = scratch / "code"
    shutil.copytree(
        ROOT / "src" / "mwaa_elt", code / "mwaa_elt", ignore=shutil.ignore_patterns("__pycache__")
    )
    compileall.compile_dir(code, quiet=1)
    for shared in [*(ROOT / name for name in _BESIDE), *sorted(ROOT.glob(".venv-airflow-*"))]:
        (scratch / shared.name).symlink_to(shared, target_is_directory=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    return env
