"""Adopt an existing MWAA environment: its GetEnvironment answer → a stack file that reproduces it.

`translate` is pure: from the environment (as MWAA's GetEnvironment returns it) and the VPC of
its subnets to a `StageImport` — the stack document, the `adopt:` import ids, the settings the
platform cannot express (refused by name, never dropped) and what `pulumi up` changes once the
environment is adopted. `verify` loads the document with the project's own stage loader and
checks the round trip (every derived name and setting equals the environment's); `write_stack`
writes it, atomically, never over an existing file without `force`. `read_environment` makes the
two AWS calls, through `mwaa_elt.aws`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mwaa_elt.errors import ConfigError
from mwaa_elt.files import replace_file
from mwaa_elt.lifecycle.adopt import AdoptConfig
from mwaa_elt.stage import (
    MWAA_LOG_TYPES,
    NAMESPACE,
    STAGE_NAME,
    StagePaths,
    load_stage,
    stack_file,
)

# GetEnvironment's LoggingConfiguration members → the stack config's logLevels keys.
LOG_MODULES = {
    "DagProcessingLogs": ("dagProcessing", "DAGProcessing"),
    "SchedulerLogs": ("scheduler", "Scheduler"),
    "TaskLogs": ("task", "Task"),
    "WebserverLogs": ("webserver", "WebServer"),
    "WorkerLogs": ("worker", "Worker"),
}
# Members of GetEnvironment's Environment that are state or outputs MWAA reports, not settings.
REPORTED = frozenset(
    {
        "Arn",
        "CreatedAt",
        "WebserverUrl",
        "ServiceRoleArn",
        "LastUpdate",
        "CeleryExecutorQueue",
        "DatabaseVpcEndpointService",
        "WebserverVpcEndpointService",
        "RequirementsS3ObjectVersion",
        "PluginsS3ObjectVersion",
        "StartupScriptS3ObjectVersion",
    }
)
# Members this module reads as settings (expressed, or refused with the reason).
SETTINGS = frozenset(
    {
        "Name",
        "Status",
        "ExecutionRoleArn",
        "KmsKey",
        "AirflowVersion",
        "SourceBucketArn",
        "DagS3Path",
        "PluginsS3Path",
        "RequirementsS3Path",
        "StartupScriptS3Path",
        "AirflowConfigurationOptions",
        "EnvironmentClass",
        "MaxWorkers",
        "MinWorkers",
        "Schedulers",
        "NetworkConfiguration",
        "LoggingConfiguration",
        "WeeklyMaintenanceWindowStart",
        "Tags",
        "WebserverAccessMode",
        "EndpointManagement",
        "MinWebservers",
        "MaxWebservers",
        "IdentityCenterConfiguration",
        "Teams",
    }
)
KNOWN_MEMBERS = REPORTED | SETTINGS
ACCESS_MODES = ("PRIVATE_ONLY", "PUBLIC_ONLY")
RESERVED_TAGS = ("stage", "project", "owner")
AIRFLOW_OPTION = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")
DEFAULT_GLUE_DATABASES = ("analytics",)


@dataclass(frozen=True)
class Refusal:
    """A setting of the environment the stack config cannot express, and what it supports."""

    setting: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.value}: {self.reason}"


@dataclass(frozen=True)
class Change:
    """What the first `pulumi up` after adoption changes on the environment (once `adopt:` goes)."""

    setting: str
    detail: str


@dataclass(frozen=True)
class ImportRequest:
    """What the user asked: the environment, its region, the stage it becomes, and the stack
    settings an environment does not carry (owner, Glue databases, the stage promoted from)."""

    environment: str
    region: str
    stage: str
    owner: str | None = None
    glue_databases: tuple[str, ...] = DEFAULT_GLUE_DATABASES
    promotes_from: str | None = None


@dataclass(frozen=True)
class StageImport:
    """The stack file reproducing the environment, its import ids, refusals and coming changes."""

    request: ImportRequest
    document: dict[str, Any]
    adopt: AdoptConfig | None
    refusals: tuple[Refusal, ...]
    changes: tuple[Change, ...]
    verified: bool = False

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def text(self) -> str:
        """The stack file as written: a comment saying where it came from, then the YAML."""
        request = self.request
        header = (
            f"# Adopted from MWAA environment {request.environment} ({request.region}) by\n"
            f"# `mwaa-elt stage import`. `adopt:` makes `pulumi up` import the environment, its\n"
            "# bucket, role and log groups; remove it after the first `pulumi up` to apply the\n"
            '# platform\'s own settings (docs/upgrades.md, "Adopt an existing environment").\n'
        )
        body = yaml.safe_dump(self.document, sort_keys=False, default_flow_style=False, width=100)
        return header + body

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.request.environment,
            "region": self.request.region,
            "stage": self.request.stage,
            "ok": self.ok,
            "verified": self.verified,
            "adopt": self.adopt.model_dump(by_alias=True, exclude_none=True)
            if self.adopt
            else None,
            "refusals": [asdict(refusal) for refusal in self.refusals],
            "changes": [asdict(change) for change in self.changes],
            "stack": self.document,
        }


@dataclass
class _Builder:
    refusals: list[Refusal] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def refuse(self, setting: str, value: object, reason: str) -> None:
        self.refusals.append(Refusal(setting, _shown(value), reason))

    def change(self, setting: str, detail: str) -> None:
        self.changes.append(Change(setting, detail))


def _shown(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _arn_parts(arn: str) -> list[str]:
    return arn.split(":", 5)


@dataclass(frozen=True)
class KmsKeyFacts:
    """What KMS says of an environment's key: DescribeKey's KeyMetadata, the key's aliases
    (ListAliases) and tags (ListResourceTags)."""

    arn: str
    key_manager: str
    key_spec: str
    key_state: str
    multi_region: bool
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


def _customer_key(
    b: _Builder,
    kms_key: str,
    key: KmsKeyFacts | None,
    environment_arn: list[str],
    prefix: str | None,
    stage: str,
) -> KmsKeyFacts | None:
    """The environment's key as the stage's customer-managed key, or None (refused by name).

    The program declares one key per stage (`encryption.customerManagedKey`) and passes its
    ARN to the environment; MWAA cannot change an environment's key, so only a key the program
    can declare as it is, named by that ARN, is adopted rather than replaced."""
    if key is None:
        b.refuse("KmsKey", kms_key, "KMS could not be asked about the key (kms:DescribeKey)")
        return None
    problems = []
    if kms_key != key.arn:
        problems.append(
            f"MWAA names the key as {kms_key}, not by its ARN {key.arn}; the program passes "
            "the ARN and MWAA cannot change an environment's key, so Pulumi would replace the "
            "environment — clone it into a new stage instead"
        )
    parts = _arn_parts(key.arn)
    if len(environment_arn) == 6 and parts[3:5] != environment_arn[3:5]:
        problems.append(
            f"the key is in {parts[3]} of account {parts[4]}; the stage's key lives in the "
            "environment's region and account"
        )
    if key.key_manager != "CUSTOMER":
        problems.append(f"a key managed by {key.key_manager}; the stage's key is the customer's")
    if key.key_spec != "SYMMETRIC_DEFAULT" or key.multi_region:
        problems.append(
            f"a {'multi-Region ' if key.multi_region else ''}{key.key_spec} key; the program "
            "declares a single-Region SYMMETRIC_DEFAULT key, so Pulumi would replace it"
        )
    if key.key_state != "Enabled":
        problems.append(f"the key is {key.key_state}; enable it first")
    alias = f"alias/{prefix}-{stage}"
    if key.tags.get("stage") != stage:
        problems.append(
            f"the key is not tagged stage={stage}, which the stage's roles' KMS grants require "
            f"(aws:ResourceTag/stage); tag it first: aws kms tag-resource --key-id {key.arn} "
            f"--tags TagKey=stage,TagValue={stage}"
        )
    if problems:
        b.refuse("KmsKey", kms_key, "; ".join(problems))
        return None
    others = [a for a in key.aliases if a != alias]
    b.change(
        "KmsKey",
        "adopted as the stage's key; once `adopt:` is removed its policy becomes the platform's "
        "(the account's IAM policies, CloudWatch Logs for the stage's log groups, CloudWatch "
        "alarms) — grants the present policy makes to other principals end — rotation is turned "
        "on, and the adopted log groups are encrypted with it",
    )
    if alias not in key.aliases:
        b.change("KmsKey alias", f"{alias} is created for the key")
    if others:
        b.change("KmsKey aliases", f"{', '.join(others)} stay, unmanaged by the stack")
    return key


def translate(
    environment: Mapping[str, Any],
    subnet_vpcs: Mapping[str, str],
    request: ImportRequest,
    key: KmsKeyFacts | None = None,
) -> StageImport:
    """The stack document reproducing `environment` as stage `request.stage`, without I/O.

    `environment` is GetEnvironment's `Environment`; `subnet_vpcs` maps each of its subnets to
    its VPC (GetEnvironment does not say which VPC it runs in); `key` is what KMS says of the
    environment's customer-managed key (`KmsKey`), when it has one.
    """
    b = _Builder()
    stage, paths = request.stage, StagePaths()
    name = str(environment.get("Name", request.environment))
    for member in sorted(set(environment) - KNOWN_MEMBERS):
        b.refuse(
            member,
            environment[member],
            "a setting this version of mwaa-elt does not know, so it cannot say whether the "
            "stack config expresses it; upgrade mwaa-elt, or clone the environment instead",
        )
    if environment.get("Status") != "AVAILABLE":
        b.refuse(
            "Status",
            environment.get("Status"),
            "only an AVAILABLE environment can be adopted; wait until it is, or fix it first",
        )

    arn = _arn_parts(str(environment.get("Arn", "")))
    account = arn[4] if len(arn) == 6 else ""
    if len(arn) == 6 and arn[3] != request.region:
        b.refuse("Arn", ":".join(arn), f"the environment is in {arn[3]}, not in {request.region}")

    prefix = name[: -len(stage) - 1] if name.endswith(f"-{stage}") else None
    if prefix is None or not prefix:
        b.refuse(
            "Name",
            name,
            f"the platform names a stage's environment <namePrefix>-<stage>, here "
            f"<namePrefix>-{stage}; pass as --as the last part of the name, or clone the "
            "environment into a new stage instead (an environment cannot be renamed)",
        )

    bucket_arn = str(environment.get("SourceBucketArn", ""))
    bucket = bucket_arn.rsplit(":", 1)[-1]
    role_arn = str(environment.get("ExecutionRoleArn", ""))
    role_path, _, role = role_arn.partition(":role/")[2].rpartition("/")
    if role_path:
        b.refuse(
            "ExecutionRoleArn",
            role_arn,
            f"the role has the path /{role_path}/; the platform's execution role has none, and "
            "IAM cannot move a role to another path",
        )

    kms_key = environment.get("KmsKey")
    adopted_key = _customer_key(b, kms_key, key, arn, prefix, stage) if kms_key else None

    access_mode = environment.get("WebserverAccessMode")
    if access_mode not in ACCESS_MODES:
        b.refuse(
            "WebserverAccessMode",
            access_mode,
            f"webserverAccessMode supports {', '.join(ACCESS_MODES)}",
        )
    if environment.get("EndpointManagement", "SERVICE") != "SERVICE":
        b.refuse(
            "EndpointManagement",
            environment["EndpointManagement"],
            "a custom endpoint setup: the platform lets MWAA create and manage the environment's "
            "VPC endpoints (SERVICE)",
        )
    default_webservers = 1 if environment.get("EnvironmentClass") == "mw1.micro" else 2
    for member in ("MinWebservers", "MaxWebservers"):
        value = environment.get(member)
        if value is not None and value != default_webservers:
            b.refuse(
                member,
                value,
                f"the stack config has no key for web servers; the platform runs MWAA's default "
                f"for the class ({default_webservers})",
            )
    if environment.get("IdentityCenterConfiguration"):
        b.refuse(
            "IdentityCenterConfiguration",
            environment["IdentityCenterConfiguration"],
            "the stack config has no key for IAM Identity Center sign-in; the platform's web "
            "server uses IAM (webserverAccessMode)",
        )
    if environment.get("Teams"):
        b.refuse("Teams", environment["Teams"], "the stack config has no key for teams")

    dag_path = environment.get("DagS3Path")
    if dag_path != paths.dags.rstrip("/"):
        b.refuse(
            "DagS3Path",
            dag_path,
            f"outside the platform's layout: promotion writes DAG files under "
            f"{paths.dags.rstrip('/')}; move them there in the environment first",
        )
    for member, key, source in (
        ("RequirementsS3Path", paths.requirements, "requirements.txt"),
        ("PluginsS3Path", paths.plugins, "plugins/ (zipped)"),
        ("StartupScriptS3Path", paths.startup_script, "startup.sh"),
    ):
        value = environment.get(member)
        version = environment.get(member.replace("Path", "ObjectVersion"))
        if value and value != key:
            b.refuse(
                member,
                value,
                f"outside the platform's layout: the platform keeps this file at {key} in the "
                "source bucket; move it there in the environment first",
            )
        elif value:
            b.change(
                member,
                f"{key} (version {version or 'latest'}) is replaced by one built from "
                f"infra/environment/{source}; copy the environment's file there first",
            )
        else:
            b.change(member, f"{key} built from infra/environment/{source} is added")

    network = environment.get("NetworkConfiguration") or {}
    subnets = [str(s) for s in network.get("SubnetIds", [])]
    vpcs = {subnet_vpcs.get(subnet) for subnet in subnets}
    vpc_id = next(iter(vpcs)) if len(vpcs) == 1 else None
    if vpc_id is None:
        b.refuse(
            "NetworkConfiguration.SubnetIds",
            subnets,
            "network.existing needs the subnets' VPC; they are in "
            + (", ".join(sorted(str(v) for v in vpcs)) or "no VPC found"),
        )
    groups = network.get("SecurityGroupIds", [])
    if groups:
        b.change(
            "NetworkConfiguration.SecurityGroupIds",
            f"{', '.join(groups)} replaced by the platform's security group "
            f"{prefix or '<namePrefix>'}-{stage}-mwaa",
        )

    log_levels: dict[str, str] = {}
    adopted_groups: list[str] = []
    logging = environment.get("LoggingConfiguration") or {}
    for member, (key, log_type) in LOG_MODULES.items():
        module = logging.get(member) or {}
        if module.get("LogLevel"):
            log_levels[key] = str(module["LogLevel"])
        if module.get("CloudWatchLogGroupArn"):
            adopted_groups.append(log_type)
        if not module.get("Enabled"):
            b.change(f"LoggingConfiguration.{member}", "enabled: the platform keeps all five on")
    adopted_groups.sort(key=MWAA_LOG_TYPES.index)

    options: dict[str, str] = {}
    for key, value in sorted((environment.get("AirflowConfigurationOptions") or {}).items()):
        if key.startswith("secrets."):
            continue  # the platform sets these; `verify` compares them with what it would set
        if not AIRFLOW_OPTION.match(key):
            b.refuse(
                f"AirflowConfigurationOptions.{key}",
                value,
                "airflowConfigurationOptions takes section.option keys in lower case",
            )
        else:
            options[key] = str(value)

    tags: dict[str, str] = {}
    owner = request.owner
    for key, value in sorted((environment.get("Tags") or {}).items()):
        if key.startswith("aws:cloudformation:"):
            b.refuse(
                f"Tags.{key}",
                value,
                "the environment belongs to a CloudFormation stack; remove it from that stack "
                "(DeletionPolicy: Retain) before Pulumi adopts it",
            )
        elif key.startswith("aws:"):
            b.refuse(f"Tags.{key}", value, "a tag AWS owns; the stack's tags cannot carry it")
        elif key == "owner":
            owner = owner or value
            if owner != value:
                b.change("Tags.owner", f"{value} becomes {owner} (--owner)")
        elif key == "stage" and value != stage:
            b.refuse(f"Tags.{key}", value, f"the platform tags the stage's resources stage={stage}")
        elif key == "project" and prefix is not None and value != prefix:
            b.refuse(
                f"Tags.{key}",
                value,
                f"the platform tags the stage's resources project=<namePrefix> ({prefix})",
            )
        elif key not in RESERVED_TAGS:
            tags[key] = str(value)
    if owner is None:
        b.refuse(
            "Tags.owner",
            "(none)",
            "the stack config needs an owner (the owner tag of every resource): pass --owner",
        )

    config: dict[str, Any] = {"aws:region": request.region}

    def put(key: str, value: Any) -> None:
        config[f"{NAMESPACE}:{key}"] = value

    put("accountId", account)
    put("owner", owner or "")
    if prefix:
        put("namePrefix", prefix)
    if request.promotes_from:
        put("promotesFrom", request.promotes_from)
    put("airflowVersion", str(environment.get("AirflowVersion", "")))
    put("environmentClass", environment.get("EnvironmentClass"))
    put("minWorkers", environment.get("MinWorkers"))
    put("maxWorkers", environment.get("MaxWorkers"))
    put("schedulers", environment.get("Schedulers"))
    put("webserverAccessMode", access_mode if access_mode in ACCESS_MODES else "PRIVATE_ONLY")
    put("logLevels", log_levels)
    if environment.get("WeeklyMaintenanceWindowStart"):
        put("maintenanceWindowStart", environment["WeeklyMaintenanceWindowStart"])
    if options:
        put("airflowConfigurationOptions", options)
    put("network", {"existing": {"vpcId": vpc_id or "", "privateSubnetIds": subnets}})
    put("encryption", {"customerManagedKey": adopted_key is not None})
    put("glueDatabases", list(request.glue_databases))
    if tags:
        put("tags", tags)
    adopt = None
    if prefix:
        adopt = AdoptConfig(
            environment=name,
            bucket=bucket,
            execution_role=role,
            log_groups=adopted_groups,
            kms_key=adopted_key.arn if adopted_key else None,
            kms_key_alias=(
                True if adopted_key and f"alias/{prefix}-{stage}" in adopted_key.aliases else None
            ),
        )
        put("adopt", adopt.model_dump(by_alias=True, exclude_none=True))
    return StageImport(
        request=request,
        document={"config": config},
        adopt=adopt,
        refusals=tuple(b.refusals),
        changes=tuple(b.changes),
    )


def verify(result: StageImport, environment: Mapping[str, Any], stacks_dir: Path) -> StageImport:
    """Load the document with the stage loader, next to the project's other stack files, and
    check the round trip: the stage's derived names and settings are the environment's.

    Every problem becomes a refusal; `verified` says the document loaded and round-tripped.
    """
    from mwaa_elt.infra.environment import airflow_configuration_options  # pulls in pulumi

    stage_name = result.request.stage
    refusals = list(result.refusals)
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-import-") as scratch:
        scratch_dir = Path(scratch)
        if stacks_dir.is_dir():
            for other in stacks_dir.glob("Pulumi.*.yaml"):
                if other.name != stack_file(stacks_dir, stage_name).name:
                    shutil.copy(other, scratch_dir / other.name)
        stack_file(scratch_dir, stage_name).write_text(result.text, encoding="utf-8")
        try:
            stage = load_stage(scratch_dir, stage_name)
        except ConfigError as error:
            written = f"{stack_file(scratch_dir, stage_name).name}: "
            for message in error.messages:
                key, _, why = message.split(written, 1)[-1].partition(": ")
                refusals.append(Refusal(key, "", why or key))
            return _with(result, refusals, verified=False)
    expected: list[tuple[str, object, object]] = [
        ("Name", environment.get("Name"), stage.environment_name),
        ("Arn", environment.get("Arn"), stage.environment_arn),
        ("SourceBucketArn", environment.get("SourceBucketArn"), stage.source_bucket_arn),
        ("ExecutionRoleArn", environment.get("ExecutionRoleArn"), stage.execution_role_arn),
        ("AirflowVersion", environment.get("AirflowVersion"), stage.airflow.version),
        ("EnvironmentClass", environment.get("EnvironmentClass"), stage.config.environment_class),
        ("MinWorkers", environment.get("MinWorkers"), stage.config.min_workers),
        ("MaxWorkers", environment.get("MaxWorkers"), stage.config.max_workers),
        ("Schedulers", environment.get("Schedulers"), stage.config.schedulers),
        (
            "WeeklyMaintenanceWindowStart",
            environment.get("WeeklyMaintenanceWindowStart"),
            stage.config.maintenance_window_start,
        ),
    ]
    why = {
        "Name": "the platform names the environment <namePrefix>-<stage>",
        "Arn": "the environment's ARN differs from the stage's (account or region)",
        "SourceBucketArn": "the platform names the source bucket "
        "airflow-<namePrefix>-<stage>-<account>; MWAA's bucket must be renamed to adopt it",
        "ExecutionRoleArn": "the platform names the execution role "
        "<namePrefix>-<stage>-mwaa-execution",
    }
    already = {refusal.setting for refusal in refusals}
    for member, found, derived in expected:
        if found is not None and found != derived and member not in already:
            refusals.append(
                Refusal(
                    member,
                    _shown(found),
                    f"{why.get(member, 'the stack config reproduces it as')} ({_shown(derived)})",
                )
            )
    for member, (key, _) in LOG_MODULES.items():
        module = (environment.get("LoggingConfiguration") or {}).get(member) or {}
        level = getattr(stage.config.log_levels, _snake(key))
        if module.get("LogLevel") and module["LogLevel"] != level:
            refusals.append(Refusal(f"LoggingConfiguration.{member}", module["LogLevel"], level))
    platform = airflow_configuration_options(stage)
    existing = environment.get("AirflowConfigurationOptions") or {}
    for key in sorted(k for k in platform if k.startswith("secrets.")):
        if key not in existing:
            detail = f"set to {platform[key]}"
            if key == "secrets.backend":
                detail += (
                    f": Airflow then reads connections and variables from Secrets Manager under "
                    f"{stage.secrets_prefix}; store them there first"
                )
            result = _with_change(result, Change(f"AirflowConfigurationOptions.{key}", detail))
        elif existing[key] != platform[key]:
            refusals.append(
                Refusal(
                    f"AirflowConfigurationOptions.{key}",
                    str(existing[key]),
                    f"set by the platform to {platform[key]} (the stage's Secrets Manager "
                    f"prefix {stage.secrets_prefix}); move the secrets there and set it so first",
                )
            )
    for key in sorted(k for k in existing if k.startswith("secrets.") and k not in platform):
        refusals.append(
            Refusal(
                f"AirflowConfigurationOptions.{key}",
                str(existing[key]),
                "the platform sets the secrets backend (secrets.backend, secrets.backend_kwargs) "
                "and no other secrets.* option",
            )
        )
    return _with(result, refusals, verified=not refusals)


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", key).lower()


def _with(result: StageImport, refusals: list[Refusal], *, verified: bool) -> StageImport:
    return StageImport(
        request=result.request,
        document=result.document,
        adopt=result.adopt,
        refusals=tuple(dict.fromkeys(refusals)),
        changes=result.changes,
        verified=verified,
    )


def _with_change(result: StageImport, change: Change) -> StageImport:
    return StageImport(
        request=result.request,
        document=result.document,
        adopt=result.adopt,
        refusals=result.refusals,
        changes=(*result.changes, change),
        verified=result.verified,
    )


def plan_import(
    environment: Mapping[str, Any],
    subnet_vpcs: Mapping[str, str],
    request: ImportRequest,
    stacks_dir: Path,
    key: KmsKeyFacts | None = None,
) -> StageImport:
    """`translate` then `verify`: the document, checked by the project's own stage loader."""
    if not STAGE_NAME.match(request.stage):
        raise ConfigError(
            f"--as: stage name '{request.stage}' must be 2-12 lower-case letters and digits, "
            "starting with a letter"
        )
    return verify(translate(environment, subnet_vpcs, request, key), environment, stacks_dir)


def write_stack(result: StageImport, stacks_dir: Path, *, force: bool = False) -> Path:
    """Write the stack file; refuse (nothing written) when anything was refused or unverified,
    or when the file exists and `force` is not set."""
    path = stack_file(stacks_dir, result.request.stage)
    if result.refusals:
        raise ConfigError(
            [f"{result.request.environment}: {refusal}" for refusal in result.refusals]
            + [f"{path.name}: not written: the platform cannot express the settings above"]
        )
    if not result.verified:
        raise ConfigError(f"{path.name}: not written: the document was not verified")
    if path.exists() and not force:
        raise ConfigError(f"{path}: exists; pass --force to overwrite it (nothing was written)")
    replace_file(path, result.text.encode("utf-8"))
    return path


def read_environment(
    name: str, region: str, *, profile: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """GetEnvironment's `Environment`, and the VPC of each of its subnets (EC2 DescribeSubnets)."""
    from mwaa_elt import aws  # boto3: loaded when an environment is read

    mwaa = aws.client("mwaa", region, profile=profile)
    try:
        environment = aws.call(
            f"mwaa:GetEnvironment {name}",
            lambda: mwaa.get_environment(Name=name)["Environment"],
            expected=("ResourceNotFoundException",),
        )
    except mwaa.exceptions.ResourceNotFoundException:
        raise ConfigError(
            f"--environment: no MWAA environment '{name}' in {region}; check the name and "
            "--region (aws mwaa list-environments)"
        ) from None
    subnets = list((environment.get("NetworkConfiguration") or {}).get("SubnetIds", []))
    subnet_vpcs: dict[str, str] = {}
    if subnets:
        ec2 = aws.client("ec2", region, profile=profile)
        found = aws.call(
            f"ec2:DescribeSubnets {', '.join(subnets)}",
            lambda: ec2.describe_subnets(SubnetIds=subnets)["Subnets"],
        )
        subnet_vpcs = {subnet["SubnetId"]: subnet["VpcId"] for subnet in found}
    return environment, subnet_vpcs


def read_key(key: str, region: str, *, profile: str | None = None) -> KmsKeyFacts:
    """KMS DescribeKey, ListAliases and ListResourceTags of the environment's key."""
    from mwaa_elt import aws  # boto3: loaded when a key is read

    kms = aws.client("kms", region, profile=profile)
    metadata = aws.call(
        f"kms:DescribeKey {key}", lambda: kms.describe_key(KeyId=key)["KeyMetadata"]
    )
    arn = str(metadata["Arn"])

    def aliases() -> list[str]:
        pages = kms.get_paginator("list_aliases").paginate(KeyId=metadata["KeyId"])
        return [str(a["AliasName"]) for page in pages for a in page.get("Aliases", [])]

    def tags() -> dict[str, str]:
        found: dict[str, str] = {}
        marker: str | None = None
        while True:
            page = kms.list_resource_tags(
                KeyId=metadata["KeyId"], **({"Marker": marker} if marker else {})
            )
            found.update({str(t["TagKey"]): str(t["TagValue"]) for t in page.get("Tags", [])})
            marker = page.get("NextMarker")
            if not page.get("Truncated") or not marker:
                return found

    return KmsKeyFacts(
        arn=arn,
        key_manager=str(metadata.get("KeyManager", "")),
        key_spec=str(metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec", ""))),
        key_state=str(metadata.get("KeyState", "")),
        multi_region=bool(metadata.get("MultiRegion", False)),
        aliases=tuple(sorted(aws.call(f"kms:ListAliases {arn}", aliases))),
        tags=aws.call(f"kms:ListResourceTags {arn}", tags),
    )
