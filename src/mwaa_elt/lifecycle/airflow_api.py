"""Airflow's REST API through MWAA's `InvokeRestApi`, for reads and writes on both lines.

MWAA adds the prefix of the environment's line (`/api/v1` on Airflow 2, `/api/v2` on Airflow 3);
a 4xx answer of Airflow arrives as `RestApiClientException` and a 5xx one as
`RestApiServerException`, both carrying `RestApiStatusCode` and Airflow's problem document
(`title`, `detail`). Every call goes through `aws.call`, so throttling and outages are retried
by the one policy of the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mwaa_elt import aws
from mwaa_elt.errors import ConfigError, ExternalError

# InvokeRestApi's `Path` is 1-64 characters (the MWAA API reference).
PATH_LIMIT = 64
PAGE = 100
_REST_ERRORS = frozenset({"RestApiClientException", "RestApiServerException"})


class RestCallFailed(ExternalError):
    """Airflow answered a REST call with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AirflowTarget:
    """One MWAA environment seen through its REST API: its name, region and Airflow line."""

    environment: str
    region: str
    major: int  # 2: /api/v1, 3: /api/v2


class AirflowApi:
    """Calls Airflow's REST API of one environment; `client` is a boto3 MWAA client."""

    def __init__(self, target: AirflowTarget, client: Any) -> None:
        self.target = target
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One REST call; Airflow's JSON answer, or `RestCallFailed` naming its status."""
        if len(path) > PATH_LIMIT:
            raise ConfigError(
                f"{method} {path}: longer than InvokeRestApi's {PATH_LIMIT} characters; "
                "the name in it is too long to be reached through MWAA's API"
            )
        request: dict[str, Any] = {"Name": self.target.environment, "Path": path, "Method": method}
        if query:
            request["QueryParameters"] = dict(query)
        if body is not None:
            request["Body"] = dict(body)
        what = (
            f"airflow:InvokeRestApi {method} {path} on MWAA environment "
            f"{self.target.environment} ({self.target.region})"
        )
        try:
            response = aws.call(
                what, lambda: self.client.invoke_rest_api(**request), expected=_REST_ERRORS
            )
        except ClientError as error:
            status = int(error.response.get("RestApiStatusCode") or 0)
            answer = error.response.get("RestApiResponse") or {}
            said = answer.get("detail") or answer.get("title") if isinstance(answer, dict) else ""
            hint = (
                "; the Airflow role the caller's airflow:InvokeRestApi permission names may "
                "not do this (backup and restore need Op, see docs/upgrades.md)"
                if status in (401, 403)
                else ""
            )
            raise RestCallFailed(
                f"{what}: Airflow answered {status or 'an error'}: {said or error}{hint}", status
            ) from None
        found = response.get("RestApiResponse")
        return found if isinstance(found, dict) else {}

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """GET `path`; None when Airflow answers 404."""
        try:
            return self.call("GET", path, query=query)
        except RestCallFailed as error:
            if error.status == 404:
                return None
            raise

    def collection(
        self, path: str, key: str, query: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged collection (`limit`/`offset`, `total_entries`)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, {**(query or {}), "limit": PAGE, "offset": len(items)}) or {}
            found = [item for item in page.get(key) or [] if isinstance(item, dict)]
            items.extend(found)
            if not found or len(items) >= int(page.get("total_entries") or 0):
                return items


@dataclass(frozen=True)
class EnvironmentState:
    """What GetEnvironment says: status, Airflow version and the last update's outcome."""

    status: str
    version: str
    last_update_status: str | None
    last_update_error: str | None


def read_environment(
    client: Any, name: str, region: str, *, expected: tuple[str, ...] = ()
) -> EnvironmentState:
    """GetEnvironment of `name` through `aws.call` (ClientErrors coded `expected` re-raised)."""
    found = aws.call(
        f"airflow:GetEnvironment {name} ({region})",
        lambda: client.get_environment(Name=name)["Environment"],
        expected=expected,
    )
    update = found.get("LastUpdate") or {}
    return EnvironmentState(
        status=str(found.get("Status", "UNKNOWN")),
        version=str(found.get("AirflowVersion", "")),
        last_update_status=update.get("Status"),
        last_update_error=(update.get("Error") or {}).get("ErrorMessage"),
    )


def environment_status(client: Any, name: str, region: str) -> str | None:
    """MWAA's status of the environment `name`, None when it does not exist (any more)."""
    try:
        found = read_environment(client, name, region, expected=("ResourceNotFoundException",))
        return found.status
    except ClientError as error:
        if aws.error_code(error) == "ResourceNotFoundException":
            return None
        raise


def live_target(name: str, region: str, client: Any) -> tuple[AirflowTarget, str]:
    """The environment as a REST API target on the line it runs now, and its Airflow version;
    ConfigError unless it is AVAILABLE (its REST API answers only then)."""
    state = read_environment(client, name, region)
    if state.status != "AVAILABLE" or not state.version:
        raise ConfigError(
            f"MWAA environment {name} is {state.status}, not AVAILABLE; Airflow's REST API "
            "answers only then — nothing was changed, run this again once it is"
        )
    return AirflowTarget(name, region, int(state.version.split(".")[0])), state.version
