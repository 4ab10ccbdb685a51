"""The `cutover:` stack setting: a second ("green") MWAA environment beside the stage's own.

While the block is in `stacks/Pulumi.<stage>.yaml` the program creates the green environment
with the block's Airflow version and class (other settings are the stage's unless overridden),
and promotion writes every pipeline to both environments. This module holds the config model
and its checks against the stage's own ("blue") settings; `mwaa_elt.stage.green` derives the green
environment's names. It imports nothing from `mwaa_elt.stage`, which declares the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel


class CutoverConfig(BaseModel):
    """The green environment: its Airflow version and class, and optional sizing overrides."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    airflow_version: str
    environment_class: str
    # Left out: the stage's own value (`minWorkers`, `maxWorkers`, `schedulers`,
    # `airflowConfigurationOptions`), so a cutover states only what it changes.
    min_workers: Annotated[int, Field(ge=1, le=25)] | None = None
    max_workers: Annotated[int, Field(ge=1, le=25)] | None = None
    schedulers: int | None = None
    airflow_configuration_options: dict[str, str] | None = None

    @field_validator("airflow_version", mode="before")
    @classmethod
    def _airflow_version(cls, value: Any) -> str:
        from mwaa_elt.stage.schema import offered_airflow_version

        return offered_airflow_version(value)

    @field_validator("environment_class")
    @classmethod
    def _environment_class(cls, value: str) -> str:
        from mwaa_elt.stage.schema import known_environment_class

        return known_environment_class(value)

    def settings(self, blue: Any) -> dict[str, Any]:
        """The green environment's settings: `blue` (the stage's config) with this block's."""
        return {
            "airflow_version": self.airflow_version,
            "environment_class": self.environment_class,
            "min_workers": _either(self.min_workers, blue.min_workers),
            "max_workers": _either(self.max_workers, blue.max_workers),
            "schedulers": _either(self.schedulers, blue.schedulers),
            "airflow_configuration_options": _either(
                self.airflow_configuration_options, blue.airflow_configuration_options
            ),
        }


def _either(value: Any, default: Any) -> Any:
    return default if value is None else value


# The green environment's settings the cutover block may set, in the order the stage's file
# lists them (`stage.retire` writes them in this order when the file lacks one).
GREEN_SETTINGS = (
    "airflow_version",
    "environment_class",
    "min_workers",
    "max_workers",
    "schedulers",
    "airflow_configuration_options",
)


def check_cutover(value: CutoverConfig | None, info: ValidationInfo) -> CutoverConfig | None:
    """Refuse a green environment that could not run or would copy the blue one exactly.

    Declared last in `StageConfig`, so `info.data` holds the stage's own (validated) settings.
    """
    data = info.data
    if value is None or not all(key in data for key in GREEN_SETTINGS):
        return value  # the stage's own errors are reported; comparing would only add noise
    from mwaa_elt.stage import StageConfig

    green = value.settings(_Blue(data))
    problems: list[str] = []
    try:
        # The stage's own rules (workers, schedulers per class, options) hold for green too.
        StageConfig.model_validate({**data, **green, "cutover": None})
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            if field in GREEN_SETTINGS:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(
                    f"the green environment's {to_camel(field)} ({green[field]!r}): {message}; "
                    f"set cutover.{to_camel(field)}"
                )
    if all(green[key] == data[key] for key in GREEN_SETTINGS):
        problems.append(
            f"airflowVersion {value.airflow_version} and environmentClass "
            f"{value.environment_class} are the stage's own and nothing else differs, so the "
            "green environment would copy the blue one; set the version (or class) to move to, "
            "or remove the cutover block"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return value


class _Blue:
    """The stage's validated settings, read as attributes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data[name]
