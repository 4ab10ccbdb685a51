"""The `adopt:` stack setting: existing resources the stage's Pulumi program imports, not creates.

`mwaa-elt stage import` writes it; the program (`mwaa_elt.infra`) turns it into Pulumi's
`import` resource option on exactly the environment, its source bucket, its execution role and
the log groups MWAA already made. Kept apart from `stage_import` (which reads the stage model) so
the stage model can import it without a cycle.

While a resource is adopted the program also sets, on that resource only:

- `ignore_changes` on the properties the platform sets differently from a hand-made environment
  (its security group, the pinned requirements/plugins/startup files, the secrets backend, the
  stage's tags, all five log types on): Pulumi's import fails when the program's inputs differ
  from the resource, and ignoring them lets the import succeed without touching the environment.
  Removing `adopt:` after the first `pulumi up` then applies them as an ordinary in-place update,
  shown by `pulumi preview` first.
- for an adopted customer-managed KMS key (`kmsKey`), the same for its description, policy,
  rotation and deletion window; its alias is imported when it already has the stage's
  (`kmsKeyAlias`), and created otherwise. Adopted log groups keep their encryption until then.
- `retain_on_delete`: an adopted resource predates the stack, so removing it from the stack (or
  `pulumi destroy`) leaves it in the account instead of deleting a running environment. Once
  `adopt:` is removed the stack owns the resources like those it created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from mwaa_elt.stage import Stage

# The ids Pulumi's `import` option takes (pulumi-aws's import docs): an MWAA environment, a
# bucket, an IAM role and a log group each by its name. IAM's `\w` in a role name is ASCII
# (letters, digits, `_`); spelled out, because pydantic's regex engine reads `\w` as every
# Unicode word character, refusing nothing IAM refuses and taking 0.1 s to compile on import.
ENVIRONMENT_NAME = r"^[a-zA-Z][0-9a-zA-Z_-]{0,79}$"
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
ROLE_NAME = r"^[A-Za-z0-9_+=,.@-]{1,64}$"
# A customer-managed key is imported by its id, taken from its ARN (the form MWAA must name it
# in: the program passes the key's ARN to the environment, whose key MWAA cannot change); its
# alias by the alias name.
KMS_KEY_ARN = (
    r"^arn:aws(-cn|-us-gov)?:kms:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:key/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
LogType = Literal["DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"]

# What the platform sets differently from an environment made by hand, per adopted resource
# (Pulumi property names); see the module docstring.
ENVIRONMENT_IGNORED = (
    "networkConfiguration",
    "requirementsS3Path",
    "requirementsS3ObjectVersion",
    "pluginsS3Path",
    "pluginsS3ObjectVersion",
    "startupScriptS3Path",
    "startupScriptS3ObjectVersion",
    "airflowConfigurationOptions",
    "loggingConfiguration",
    "tags",
    "tagsAll",
)
BUCKET_IGNORED = ("forceDestroy", "tags", "tagsAll")
ROLE_IGNORED = ("assumeRolePolicy", "description", "maxSessionDuration", "tags", "tagsAll")
LOG_GROUP_IGNORED = ("retentionInDays", "kmsKeyId", "tags", "tagsAll")
KEY_IGNORED = (
    "description",
    "policy",
    "enableKeyRotation",
    "deletionWindowInDays",
    "tags",
    "tagsAll",
)


class AdoptConfig(BaseModel):
    """The existing environment, source bucket, execution role and log groups `pulumi up` adopts."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    environment: Annotated[str, Field(pattern=ENVIRONMENT_NAME)]
    bucket: Annotated[str, Field(pattern=BUCKET_NAME)]
    execution_role: Annotated[str, Field(pattern=ROLE_NAME)]
    # The log types whose group `airflow-<environment>-<type>` MWAA has already created.
    log_groups: list[LogType] = Field(default_factory=list)
    # The environment's customer-managed key (its ARN), and whether the key already has the
    # stage's alias (`alias/<namePrefix>-<stage>`), imported then.
    kms_key: Annotated[str, Field(pattern=KMS_KEY_ARN)] | None = None
    kms_key_alias: bool | None = None


def adoption_problems(stage: Stage) -> list[str]:
    """Where `adopt:` names something other than the stage's own resource (empty: consistent).

    Pulumi imports a resource under the name the program declares, so an adopted resource must
    carry the name the stage derives; anything else would adopt one resource and declare another.
    """
    adopt = stage.config.adopt
    if adopt is None:
        return []
    expected = {
        "environment": (adopt.environment, stage.environment_name),
        "bucket": (adopt.bucket, stage.source_bucket),
        "executionRole": (adopt.execution_role, stage.execution_role_name),
    }
    problems = [
        f"mwaa-elt:adopt.{key}: '{found}' is not the stage's {key} '{derived}'; the program "
        f"declares '{derived}', so it can adopt only a resource of that name"
        for key, (found, derived) in expected.items()
        if found != derived
    ]
    if len(set(adopt.log_groups)) != len(adopt.log_groups):
        problems.append("mwaa-elt:adopt.logGroups: lists a log type twice")
    if adopt.kms_key is not None:
        region, account = adopt.kms_key.split(":")[3:5]
        if not stage.config.encryption.customer_managed_key:
            problems.append(
                "mwaa-elt:adopt.kmsKey: set, but encryption.customerManagedKey is false, so the "
                "program declares no key to adopt it as; set encryption.customerManagedKey: true"
            )
        elif (region, account) != (stage.region, stage.account_id):
            problems.append(
                f"mwaa-elt:adopt.kmsKey: '{adopt.kms_key}' is in {region} of account {account}; "
                f"the stage's key lives in {stage.region} of account {stage.account_id}"
            )
    elif adopt.kms_key_alias:
        problems.append("mwaa-elt:adopt.kmsKeyAlias: true without adopt.kmsKey; remove it")
    return problems


def kms_key_id(arn: str) -> str:
    """The key id (Pulumi's import id for a KMS key) in a key ARN."""
    return arn.rsplit("/", 1)[-1]
