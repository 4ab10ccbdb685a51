"""Guardrails every stage must pass, as pure functions over Pulumi resource properties.

`infra/policy/__main__.py` wraps them in a mandatory Pulumi policy pack; tests call them directly.
Property names are the engine's (camelCase), as a policy pack receives them. A value the engine
does not know yet during a preview is `UNKNOWN`: an unknown ARN counts as set, an unknown input
is judged again by `pulumi up` when every value is known, and a provider-computed output counts
only once it is known to be right.
"""

from __future__ import annotations

import importlib
import json
import keyword
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

MWAA_ENVIRONMENT = "aws:mwaa/environment:Environment"
BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
VERSIONING_TYPES = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
# Resource type → where its IAM policy documents are: a property, or a list of objects with one.
POLICY_DOCUMENTS: Mapping[str, tuple[str, str | None]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy", None),
    "aws:iam/userPolicy:UserPolicy": ("policy", None),
    "aws:iam/groupPolicy:GroupPolicy": ("policy", None),
    "aws:iam/policy:Policy": ("policy", None),
    "aws:iam/role:Role": ("inlinePolicies", "policy"),
}
STAGE_TAG = "stage"


class _Unknown:
    """A value the engine does not know yet (an output of a resource still to be created)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


@dataclass(frozen=True)
class StageInfo:
    """What the rules need to know of the stage a stack deploys."""

    name: str | None
    production: bool


@dataclass(frozen=True)
class StackResource:
    """One resource of a stack, as a stack rule sees it."""

    urn: str
    resource_type: str
    props: Mapping[str, Any]
    # Property name → URNs of the resources its value came from (an Output's origin).
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


# -- rule 1 and 3: the MWAA source bucket ----------------------------------------------------


def source_bucket_violations(
    resources: Sequence[StackResource], stage: StageInfo
) -> list[tuple[str, str]]:
    """(URN, message) for each MWAA source bucket that is not versioned, private and, in
    production, encrypted with a customer-managed KMS key."""
    buckets = [r for r in resources if r.resource_type in BUCKET_TYPES]
    violations: list[tuple[str, str]] = []
    for environment in resources:
        if environment.resource_type != MWAA_ENVIRONMENT:
            continue
        arn = environment.props.get("sourceBucketArn")
        targets = _referenced(environment, "sourceBucketArn", buckets) or [
            b for b in buckets if _bucket_name(arn) is not None and _name_of(b) == _bucket_name(arn)
        ]
        if not targets:
            if arn is not UNKNOWN:
                violations.append(
                    (
                        environment.urn,
                        f"source bucket {arn} is not managed by this stack, so its versioning "
                        "and public access block cannot be verified; create it in the stack",
                    )
                )
            continue
        for bucket in targets:
            violations.extend((bucket.urn, m) for m in _bucket_problems(bucket, resources, stage))
    return violations


def _bucket_problems(
    bucket: StackResource, resources: Sequence[StackResource], stage: StageInfo
) -> list[str]:
    name = _name_of(bucket)
    shown = name if isinstance(name, str) else bucket.urn.rsplit("::", 1)[-1]
    problems = []
    attached = [r for r in resources if _targets(r, bucket)]
    # The bucket's own versioning and encryption settings are outputs, unknown in a preview
    # until set; only a value known to be right counts, or a preview would pass on nothing.
    versioned = _get(bucket.props, "versioning", "enabled") is True or any(
        _get(r.props, "versioningConfiguration", "status") in ("Enabled", UNKNOWN)
        for r in attached
        if r.resource_type in VERSIONING_TYPES
    )
    if not versioned:
        problems.append(
            f"MWAA source bucket {shown} is not versioned; MWAA needs object versions of "
            "requirements.txt, plugins.zip and the startup script: add an "
            "aws.s3.BucketVersioning with status Enabled"
        )
    blocks = [r for r in attached if r.resource_type == PUBLIC_ACCESS_BLOCK]
    if not any(all(_truthy(r.props.get(flag)) for flag in PUBLIC_ACCESS_FLAGS) for r in blocks):
        problems.append(
            f"MWAA source bucket {shown} is not public-access-blocked; add an "
            f"aws.s3.BucketPublicAccessBlock with {', '.join(PUBLIC_ACCESS_FLAGS)} all true"
        )
    if stage.production:
        rules = [_get(bucket.props, "serverSideEncryptionConfiguration", "rule")]
        for r in attached:
            if r.resource_type in ENCRYPTION_TYPES:
                rules.extend(_as_list(r.props.get("rules")))
        if not any(_is_kms_rule(rule) for rule in rules):
            problems.append(
                f"MWAA source bucket {shown} of a production stage is not encrypted with a "
                "customer-managed KMS key; add an aws.s3.BucketServerSideEncryptionConfiguration "
                "with sseAlgorithm aws:kms and the stage's kmsMasterKeyId"
            )
    return problems


def _is_kms_rule(rule: Any) -> bool:
    """An SSE rule with a KMS algorithm and a key; the key's ARN may still be unknown."""
    default = _get(rule, "applyServerSideEncryptionByDefault")
    return _get(default, "sseAlgorithm") in KMS_ALGORITHMS and _is_set(
        _get(default, "kmsMasterKeyId")
    )


def _targets(resource: StackResource, bucket: StackResource) -> bool:
    """Whether `resource`'s `bucket` property names `bucket`, by Output origin or by value."""
    if resource.resource_type not in VERSIONING_TYPES | ENCRYPTION_TYPES | {PUBLIC_ACCESS_BLOCK}:
        return False
    if _referenced(resource, "bucket", [bucket]):
        return True
    value = resource.props.get("bucket")
    return isinstance(value, str) and value == _name_of(bucket)


def _referenced(
    resource: StackResource, prop: str, candidates: Sequence[StackResource]
) -> list[StackResource]:
    urns = set(resource.property_dependencies.get(prop, ()))
    return [c for c in candidates if c.urn in urns]


def _name_of(bucket: StackResource) -> Any:
    return bucket.props.get("bucket")


def _bucket_name(arn: Any) -> str | None:
    """`name` of `arn:<partition>:s3:::<name>`; None for anything else."""
    if not isinstance(arn, str):
        return None
    prefix, _, name = arn.partition(":::")
    return name if prefix.startswith("arn:") and prefix.endswith(":s3") and name else None


# -- rule 2 and 3: the production environment -----------------------------------------------


def webserver_violations(
    resource_type: str, props: Mapping[str, Any], stage: StageInfo
) -> list[str]:
    """A production stage's Airflow UI must be reachable only from inside its VPC."""
    if resource_type != MWAA_ENVIRONMENT or not stage.production:
        return []
    # AWS defaults to PRIVATE_ONLY when the property is not set.
    mode = props.get("webserverAccessMode", "PRIVATE_ONLY")
    if mode in ("PRIVATE_ONLY", UNKNOWN):
        return []
    return [
        f"webserverAccessMode is {mode} in production stage '{stage.name}'; a production "
        "stage's Airflow UI must be PRIVATE_ONLY"
    ]


def environment_kms_violations(
    resource_type: str, props: Mapping[str, Any], stage: StageInfo
) -> list[str]:
    """A production stage's MWAA environment encrypts with the stage's customer-managed key."""
    if resource_type != MWAA_ENVIRONMENT or not stage.production:
        return []
    if _is_set(props.get("kmsKey")):
        return []
    return [
        f"kmsKey is not set in production stage '{stage.name}'; a production environment must "
        "be encrypted with the stage's customer-managed KMS key, not an AWS-owned one"
    ]


# -- rule 4: IAM ------------------------------------------------------------------------------


def iam_wildcard_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Allow statements name every action: no `*`/`?` pattern and no NotAction."""
    where = POLICY_DOCUMENTS.get(resource_type)
    if where is None:
        return []
    prop, nested = where
    documents: list[tuple[str, Any]] = []
    if nested is None:
        documents.append((prop, props.get(prop)))
    else:
        for index, item in enumerate(_as_list(props.get(prop))):
            label = _get(item, "name")
            documents.append(
                (f"{prop}[{label if isinstance(label, str) else index}]", _get(item, nested))
            )
    violations = []
    for label, document in documents:
        violations.extend(f"{label}: {problem}" for problem in document_wildcards(document))
    return violations


def document_wildcards(document: Any) -> list[str]:
    """Problems of one policy document (a JSON string or a mapping); empty when it is exact."""
    if document is None or document is UNKNOWN:
        return []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            return [f"not a JSON policy document ({exc.msg}); it cannot be checked"]
    if not isinstance(document, Mapping):
        return ["not a policy document (expected an object with a Statement list)"]
    problems = []
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        if not isinstance(statement, Mapping):
            continue
        # IAM has no default Effect; treat a missing one as Allow so it cannot slip through.
        if statement.get("Effect", "Allow") == "Deny":
            continue
        label = statement.get("Sid") or f"Statement[{index}]"
        if "NotAction" in statement:
            problems.append(
                f"statement {label} allows NotAction, which grants every other action, "
                "including ones AWS adds later; list the actions it allows"
            )
        wild = sorted(
            a for a in _as_list(statement.get("Action")) if isinstance(a, str) and _is_wildcard(a)
        )
        if wild:
            problems.append(
                f"statement {label} allows wildcard action {', '.join(wild)}; "
                "list each action it needs"
            )
    return problems


def _is_wildcard(action: str) -> bool:
    return "*" in action or "?" in action


# -- rule 5: the stage tag --------------------------------------------------------------------


def stage_tag_violations(
    resource_type: str,
    props: Mapping[str, Any],
    stage: StageInfo,
    default_tags: Mapping[str, Any] | None = None,
    taggable: Callable[[str], bool | None] | None = None,
) -> list[str]:
    """A taggable resource carries `stage` (in tags, tagsAll or its provider's default tags),
    equal to the stage's name when that is known."""
    is_taggable = (taggable or aws_type_is_taggable)(resource_type)
    if is_taggable is None:
        is_taggable = "tags" in props or "tagsAll" in props
    if not is_taggable:
        return []
    sources = [props.get("tags"), props.get("tagsAll"), default_tags]
    if any(source is UNKNOWN for source in sources) and not any(
        STAGE_TAG in _tag_map(source) for source in sources
    ):
        return []
    values = {_tag_map(source)[STAGE_TAG] for source in sources if STAGE_TAG in _tag_map(source)}
    if not values:
        return [
            f"no '{STAGE_TAG}' tag; tag the resource (or set the provider's defaultTags) with "
            f"{STAGE_TAG}={stage.name or '<stage>'}"
        ]
    wrong = sorted(str(v) for v in values if v is not UNKNOWN and v != stage.name)
    if stage.name is not None and wrong:
        return [
            f"'{STAGE_TAG}' tag is {', '.join(wrong)} but this stack deploys stage "
            f"'{stage.name}'; set {STAGE_TAG}={stage.name}"
        ]
    return []


def default_tags(provider_props: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The tags an AWS provider adds to every resource (`defaultTags.tags`)."""
    if not provider_props:
        return {}
    value = provider_props.get("defaultTags")
    # The engine passes provider settings that are objects as JSON strings.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    tags = _get(value, "tags")
    return tags if isinstance(tags, Mapping) else {}


@cache
def aws_type_is_taggable(resource_type: str) -> bool | None:
    """Whether the pulumi-aws resource `resource_type` has a `tags` property; None if unknown.

    Only `aws:` types are looked up; providers, components and other packages are not taggable.
    """
    if not resource_type.startswith("aws:"):
        return False
    try:
        _, module, class_name = resource_type.split(":")
    except ValueError:
        return None
    package = module.split("/", 1)[0]
    package = f"{package}_" if keyword.iskeyword(package) else package  # lambda → lambda_
    path = "pulumi_aws" if package == "index" else f"pulumi_aws.{package}"
    try:
        with warnings.catch_warnings():
            # Importing a module defines its deprecated classes, each of which warns.
            warnings.simplefilter("ignore", DeprecationWarning)
            resource_class = getattr(importlib.import_module(path), class_name)
    except (ImportError, AttributeError):
        return None
    return hasattr(resource_class, "tags")


def _tag_map(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    # A few resources (autoscaling groups) take tags as a list of {key, value} objects.
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {
            item["key"]: item.get("value")
            for item in value
            if isinstance(item, Mapping) and isinstance(item.get("key"), str)
        }
    return {}


# -- rule 6: production is watched ----------------------------------------------------------

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The MWAA metrics (namespace AmazonMWAA) a production environment must have an alarm on, and
# what each alarm is about; `mwaa_elt.infra.documents.monitoring` defines them.
REQUIRED_ALARM_METRICS: Mapping[str, str] = {
    "SchedulerHeartbeat": "the scheduler heartbeat",
    "ImportErrors": "DAG import errors",
    "TaskInstanceFailures": "task failures",
    "QueuedTasks": "tasks queued with no free worker",
}


def production_alarm_violations(
    resources: Sequence[StackResource], stage: StageInfo
) -> list[tuple[str, str]]:
    """(URN, message) for each production MWAA environment that lacks an alarm, notifying
    someone, on each metric of REQUIRED_ALARM_METRICS for that environment."""
    if not stage.production:
        return []
    alarms = [r for r in resources if r.resource_type == METRIC_ALARM]
    violations = []
    for environment in resources:
        if environment.resource_type != MWAA_ENVIRONMENT:
            continue
        name = environment.props.get("name")
        watched: set[str] = set()
        for alarm in alarms:
            if not _as_list(alarm.props.get("alarmActions")) and (
                alarm.props.get("alarmActions") is not UNKNOWN
            ):
                continue  # an alarm that tells no one does not watch anything
            for metric in _alarm_metrics(alarm.props):
                if _get(metric, "namespace") != "AmazonMWAA":
                    continue
                dimension = _get(metric, "dimensions", "Environment")
                if dimension is UNKNOWN or name is UNKNOWN or dimension == name:
                    watched.add(str(_get(metric, "metricName")))
        missing = [what for metric, what in REQUIRED_ALARM_METRICS.items() if metric not in watched]
        if missing:
            violations.append(
                (
                    environment.urn,
                    f"production MWAA environment {name if isinstance(name, str) else ''} has "
                    f"no alarm notifying an SNS topic on {', '.join(missing)}; declare the "
                    "stage's alarms (mwaa_elt.infra.monitoring) with alarmActions set",
                )
            )
    return violations


def _alarm_metrics(props: Mapping[str, Any]) -> list[Any]:
    """The metrics an alarm watches: its own, or those of its metric queries."""
    if props.get("metricName") is not None:
        return [props]
    return [
        _get(query, "metric")
        for query in _as_list(props.get("metricQueries"))
        if isinstance(_get(query, "metric"), Mapping)
    ]


# -- helpers ----------------------------------------------------------------------------------


def _get(value: Any, *keys: str) -> Any:
    """`value[k1][k2]…`, None when a level is missing, UNKNOWN when a level is unknown."""
    for key in keys:
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
            value = value[0]  # older schemas wrap single objects in a one-element list
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def _is_set(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value.strip() != "")


def _truthy(value: Any) -> bool:
    return value is True or value is UNKNOWN
