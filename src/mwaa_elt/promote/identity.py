"""Who is promoting: the AWS caller identity recorded as `promoted_by`, checked for the stage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from mwaa_elt import aws
from mwaa_elt.errors import ConfigError
from mwaa_elt.promote.store import make_client
from mwaa_elt.stage import Stage

# Set when talking to an emulator; emulators answer with their own fixed account id.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dataclass(frozen=True)
class Identity:
    """Who promotes, when, and with which mwaa-elt; recorded in the manifest."""

    promoted_by: str
    promoted_at: str
    tool_version: str


def emulated() -> bool:
    """Whether boto3 is pointed at an emulator through its standard endpoint variables."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def caller_arn(stage: Stage, sts: Any | None = None) -> str:
    """The ARN of the AWS identity running the command, refused when it belongs to an account
    other than the stage's (except against an emulator)."""
    client = sts or make_client("sts", stage.region)
    # Credential errors say "check your credentials"; throttling, 5xx and cut-off answers are
    # retried and then reported as what they are.
    arn = str(
        aws.call(
            "sts:GetCallerIdentity (who is promoting)",
            lambda: client.get_caller_identity()["Arn"],
            state="nothing was changed",
        )
    )
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if account != stage.account_id and not emulated():
        raise ConfigError(
            f"your AWS credentials are for account {account or '?'} ({arn}), but stage "
            f"{stage.name} lives in {stage.account_id}; use that account's credentials "
            "(e.g. AWS_PROFILE) — nothing was changed"
        )
    return arn


def identity_now(promoted_by: str) -> Identity:
    """An identity stamped with the current UTC time and this mwaa-elt's version."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    return Identity(promoted_by=promoted_by, promoted_at=now, tool_version=version("mwaa-elt"))
