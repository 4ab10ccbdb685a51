"""The three S3 objects an MWAA environment installs: requirements.txt, plugins.zip, startup script.

Their S3 object versions feed the environment, so each builder is pure and deterministic: the
bytes (and so the 20-30 minute environment update) change exactly when the content does.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mwaa_elt.diagnostics import display_path, read_text
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import Stage

# MWAA installs Airflow itself; a requirement on it would try to replace the image's Airflow.
FORBIDDEN_PACKAGES = frozenset({"apache-airflow"})
# Options pip honours in a requirements file that MWAA can resolve; anything else (-r, -e,
# nested constraint files) names a path that does not exist on the workers.
ALLOWED_OPTIONS = ("--find-links", "--index-url", "--extra-index-url", "--trusted-host")
PLACEHOLDERS = ("{airflow_version}", "{python_version}")
EXCLUDED_DIRS = frozenset({"__pycache__"})
EXCLUDED_NAMES = frozenset({".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip entry can carry
SHELLS = frozenset({"sh", "bash"})

_CONSTRAINT = re.compile(r"^(?:-c|--constraint)(?:\s*=\s*|\s+)(?P<url>\S.*)$")
_COMMENT = re.compile(r"(^|\s+)#.*$")


def line_requirements_path(source: Path, major: int) -> Path:
    """The file of requirements only stages on Airflow line `major` install, next to `source`."""
    return source.with_name(f"{source.stem}-airflow{major}{source.suffix}")


def build_requirements(stage: Stage, source: Path) -> bytes:
    """The stage's requirements.txt: its own constraint line, the source's requirements, then
    those of the stage's Airflow line (`requirements-airflow<major>.txt`, when it exists).

    Comments and blank lines are dropped so that editing them does not restart the environment.
    """
    expected = stage.airflow.constraints_url
    errors: list[str] = []
    body: list[str] = []
    line_source = line_requirements_path(source, stage.airflow.major)
    for path in (source, line_source):
        if path is line_source and not path.is_file():
            continue
        # Each file may carry the stage's own constraint line once.
        _read_requirements(stage, path, expected, errors, [], body)
    if errors:
        raise ConfigError(errors)
    lines = [f'--constraint "{expected}"', *body]
    return ("\n".join(lines) + "\n").encode()


def _read_requirements(
    stage: Stage,
    source: Path,
    expected: str,
    errors: list[str],
    constraints: list[int],
    body: list[str],
) -> None:
    shown = display_path(source)
    text = read_text(source, shown)
    for number, line in _logical_lines(text):
        if match := _CONSTRAINT.match(line):
            constraints.append(number)
            url = _render_placeholders(match["url"].strip("'\""), stage)
            if url != expected:
                errors.append(
                    f"{shown}: line {number}: constraint file {url} does not match stage "
                    f"'{stage.name}' (Airflow {stage.airflow.version}, Python "
                    f"{stage.airflow.python}); remove the line (the build adds the stage's own) "
                    f"or write {_placeholder_line()}"
                )
            continue
        if line.startswith("-"):
            option = line.split("=", 1)[0].split(maxsplit=1)[0]
            if option not in ALLOWED_OPTIONS:
                errors.append(
                    f"{shown}: line {number}: option {option} is not supported on MWAA; "
                    f"allowed: {', '.join(ALLOWED_OPTIONS)}"
                )
            else:
                body.append(" ".join(line.split()))
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            errors.append(
                f"{shown}: line {number}: '{line}' is not a requirement ({exc}); expected a "
                "package name with an optional version, such as apache-airflow-providers-amazon"
            )
            continue
        if canonicalize_name(requirement.name) in FORBIDDEN_PACKAGES:
            errors.append(
                f"{shown}: line {number}: '{line}' requires Airflow itself; MWAA installs "
                f"Airflow {stage.airflow.version} and forbids replacing it: remove the line"
            )
            continue
        body.append(str(requirement))
    if len(constraints) > 1:
        errors.append(
            f"{shown}: line {constraints[1]}: a second constraint line (the first is on line "
            f"{constraints[0]}); keep at most one"
        )


def package_names(requirements: bytes) -> set[str]:
    """The normalized distribution names a requirements.txt asks for (options are skipped)."""
    names: set[str] = set()
    errors: list[str] = []
    for number, line in _logical_lines(requirements.decode("utf-8")):
        if line.startswith("-"):
            continue
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement as exc:
            errors.append(f"requirements.txt: line {number}: '{line}' is not a requirement ({exc})")
    if errors:
        raise ConfigError(errors)
    return names


def build_plugins_zip(plugins_dir: Path) -> bytes:
    """A byte-reproducible plugins.zip of `plugins_dir`: sorted entries, fixed times and modes.

    Entries are stored, not deflated, because deflate output differs between zlib builds and a
    laptop and CI must produce the same bytes.
    """
    shown = display_path(plugins_dir)
    if not plugins_dir.is_dir():
        raise ConfigError(f"{shown}: not a directory; expected the folder of Airflow plugins")
    files = sorted(
        (path.relative_to(plugins_dir).as_posix(), path)
        for path in plugins_dir.rglob("*")
        if path.is_file() and not _excluded(path.relative_to(plugins_dir))
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in files:
            entry = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            entry.create_system = 3  # Unix, so the bytes do not depend on the building OS
            entry.external_attr = 0o100644 << 16  # a regular file, rw-r--r--, whatever the umask
            entry.compress_type = zipfile.ZIP_STORED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def read_startup_script(path: Path) -> bytes:
    """The startup script's bytes, refused unless it has a sh/bash shebang and LF line endings."""
    shown = display_path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None
    errors = []
    first_line = content.split(b"\n", 1)[0].rstrip(b"\r")
    interpreter = _shebang_interpreter(first_line)
    if interpreter is None:
        errors.append(
            f"{shown}: line 1: missing shebang; MWAA runs the script with sh, start it with "
            "#!/bin/sh (or #!/bin/bash)"
        )
    elif interpreter not in SHELLS:
        errors.append(
            f"{shown}: line 1: shebang runs '{interpreter}'; MWAA runs the script with sh, "
            "use #!/bin/sh (or #!/bin/bash)"
        )
    if b"\r" in content:
        number = content[: content.index(b"\r")].count(b"\n") + 1
        errors.append(
            f"{shown}: line {number}: Windows (CRLF) line ending; sh reads the CR as part of "
            "each command, save the file with LF line endings"
        )
    if errors:
        raise ConfigError(errors)
    return content


def _shebang_interpreter(first_line: bytes) -> str | None:
    if not first_line.startswith(b"#!"):
        return None
    words = first_line[2:].decode("utf-8", errors="replace").split()
    if not words:
        return ""
    program = words[0].rsplit("/", 1)[-1]
    if program == "env" and len(words) > 1:
        program = words[1]
    return program


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, content) of each non-empty line with comments removed, as pip reads it."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if line:
            lines.append((number, line))
    return lines


def _render_placeholders(url: str, stage: Stage) -> str:
    return url.replace(PLACEHOLDERS[0], stage.airflow.version).replace(
        PLACEHOLDERS[1], stage.airflow.python
    )


def _placeholder_line() -> str:
    return (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/'
        'constraints-{airflow_version}/constraints-{python_version}.txt"'
    )


def _excluded(relative: Path) -> bool:
    parts = relative.parts
    return (
        any(part in EXCLUDED_DIRS for part in parts[:-1])
        or parts[-1] in EXCLUDED_NAMES
        or parts[-1].endswith(EXCLUDED_SUFFIXES)
    )
