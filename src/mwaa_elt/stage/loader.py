"""Loading a stage: read a stack file (YAML, duplicate keys refused), validate it against the
schema and the rules across keys and stages, and word every problem as `path: key: what; fix`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from mwaa_elt.diagnostics import display_path, key_text, read_text
from mwaa_elt.diagnostics.located_yaml import FileKind, YamlProblem, load_yaml_text
from mwaa_elt.diagnostics.pydantic_errors import describe
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage.names import Stage, serving_paths
from mwaa_elt.stage.schema import (
    ALARM_NAMES,
    NAMESPACE,
    PULUMI_STACK_FILE_KEYS,
    STAGE_NAME,
    StageConfig,
)


def stack_file(stacks_dir: Path, stage: str) -> Path:
    return stacks_dir / f"Pulumi.{stage}.yaml"


def available_stages(stacks_dir: Path) -> list[str]:
    """Stage names that have a stack file, in promotion order where one is known."""
    names = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
    order = {"dev": 0, "staging": 1, "prod": 2}
    return sorted(names, key=lambda n: (order.get(n, 1), n))


def load_stage(stacks_dir: Path, stage: str) -> Stage:
    """Read and validate one stage; raise ConfigError with every problem of its stack file."""
    path = stack_file(stacks_dir, stage)
    shown = display_path(path)
    if not STAGE_NAME.match(stage):
        raise ConfigError(
            f"{shown}: stage name '{stage}' must be 2-12 lower-case letters and digits, "
            "starting with a letter"
        )
    if not path.is_file():
        known = available_stages(stacks_dir) if stacks_dir.is_dir() else []
        raise ConfigError(
            f"{shown}: no such stack file; known stages: {', '.join(known) or 'none'}"
        )
    raw = _read_yaml(path, shown)
    values, region, errors = _split_config(raw, shown)
    config: StageConfig | None = None
    try:
        config = StageConfig.model_validate(values)
    except ValidationError as exc:
        errors.extend(f"{shown}: {message}" for message in _pydantic_messages(exc))
    if config is not None:
        errors.extend(f"{shown}: {message}" for message in _stage_rules(stage, config, stacks_dir))
    if errors:
        raise ConfigError(errors)
    assert config is not None and region is not None
    return Stage(
        name=stage, region=region, config=config, source_file=path, paths=serving_paths(config)
    )


def load_all_stages(stacks_dir: Path) -> dict[str, Stage]:
    """Every stage of the project, validated; ConfigError lists the problems of all of them."""
    stages: dict[str, Stage] = {}
    errors: list[str] = []
    for name in available_stages(stacks_dir):
        try:
            stages[name] = load_stage(stacks_dir, name)
        except ConfigError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ConfigError(errors)
    return stages


STACK_FILE = FileKind(
    "a stack file",
    "expected a mapping with a 'config:' key",
    "a second YAML document ('---'); a stack file holds one stage's settings",
)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    doc, problems = load_yaml_text(read_text(path, shown), STACK_FILE)
    if doc is None:
        raise ConfigError([f"{shown}: line {p.mark.line}: {_yaml_wording(p)}" for p in problems])
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{shown}: {STACK_FILE.empty}")
    return doc.data


def _yaml_wording(problem: YamlProblem) -> str:
    message = problem.message
    if message == STACK_FILE.empty:
        return message
    return message if message.startswith("invalid YAML") else f"invalid YAML: {message}"


def _split_config(raw: dict[str, Any], shown: str) -> tuple[dict[str, Any], str | None, list[str]]:
    """Separate `mwaa-elt:` keys (for the model) from `aws:region`; report unknown keys."""
    errors: list[str] = []
    for key in raw:
        if key not in PULUMI_STACK_FILE_KEYS:
            errors.append(
                f"{shown}: {key}: unknown top-level key; "
                f"allowed: {', '.join(sorted(PULUMI_STACK_FILE_KEYS))}"
            )
    config = raw.get("config")
    if not isinstance(config, dict):
        errors.append(f"{shown}: config: missing, or not a mapping of stack settings")
        return {}, None, errors
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE and name:
            values[name] = value
        elif namespace in {"aws", "pulumi"} and name:
            continue
        else:
            errors.append(
                f"{shown}: {key}: unknown key; stage settings are '{NAMESPACE}:<name>' "
                "(provider settings 'aws:<name>')"
            )
    region = config.get("aws:region")
    if region is None:
        errors.append(f"{shown}: aws:region: missing; expected an AWS region such as eu-west-1")
    elif not isinstance(region, str) or not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", region):
        errors.append(f"{shown}: aws:region: '{region}' is not an AWS region, such as eu-west-1")
        region = None
    return values, region, errors


def _pydantic_messages(exc: ValidationError) -> list[str]:
    """`mwaa-elt:<key>: what is wrong` for each error, in the wording specs get."""
    messages = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in {"function-after", "list"})
        where = key_text(loc)
        key = f"{NAMESPACE}:{where}" if where else NAMESPACE
        described = describe({**error, "loc": loc}, StageConfig, by_alias=True, key_in_front=True)
        messages.append(f"{key}: {described}")
    return messages


def _stage_rules(stage: str, config: StageConfig, stacks_dir: Path) -> list[str]:
    """Rules across keys, and across stages, that a single field cannot check."""
    errors = []
    production = config.production if config.production is not None else stage == "prod"
    if production and config.webserver_access_mode != "PRIVATE_ONLY":
        errors.append(
            f"{NAMESPACE}:webserverAccessMode: a production stage must use PRIVATE_ONLY "
            f"(got {config.webserver_access_mode})"
        )
    if production and not config.encryption.customer_managed_key:
        errors.append(
            f"{NAMESPACE}:encryption.customerManagedKey: a production stage must encrypt with "
            "a customer-managed KMS key; set it to true"
        )
    if production and config.network.vpc_cidr and config.network.nat_gateways == 1:
        errors.append(
            f"{NAMESPACE}:network.natGateways: a production stage needs one NAT gateway per "
            "availability zone (2), so losing one zone does not cut the environment off"
        )
    if config.promotes_from is not None:
        if config.promotes_from == stage:
            errors.append(f"{NAMESPACE}:promotesFrom: a stage cannot promote from itself")
        elif not stack_file(stacks_dir, config.promotes_from).is_file():
            errors.append(
                f"{NAMESPACE}:promotesFrom: '{config.promotes_from}' has no stack file; known "
                f"stages: {', '.join(s for s in available_stages(stacks_dir) if s != stage)}"
            )
    elif stage != "dev" and stage in {"staging", "prod"}:
        expected = {"staging": "dev", "prod": "staging"}[stage]
        errors.append(
            f"{NAMESPACE}:promotesFrom: missing; {stage} must name the stage it promotes from "
            f"(usually {expected})"
        )
    if config.serving_environment == "green" and config.cutover is not None:
        errors.append(
            f"{NAMESPACE}:servingEnvironment: green makes the cutover's green environment the "
            f"stage's own, while {NAMESPACE}:cutover still declares it as the second one beside "
            f"blue; retiring blue moves the block's settings to the stage's own keys and removes "
            f"the block (`mwaa-elt cutover finish --stage {stage}` prints the change), so remove "
            f"{NAMESPACE}:cutover or set servingEnvironment back to blue"
        )
    errors.extend(_delivery_rules(stage, config, stacks_dir))
    monitoring = config.monitoring
    if monitoring.alert_topic is not None and monitoring.alert_topic not in config.alert_topics:
        errors.append(
            f"{NAMESPACE}:monitoring.alertTopic: '{monitoring.alert_topic}' is not one of the "
            f"stage's alertTopics ({', '.join(config.alert_topics) or 'none'}); name one of them"
        )
    if production and not config.alert_topics:
        errors.append(
            f"{NAMESPACE}:alertTopics: empty, so a production stage's alarms would notify no one; "
            "list a topic"
        )
    if production:
        for alarm in ALARM_NAMES:
            if getattr(monitoring, to_snake(alarm)).enabled is False:
                errors.append(
                    f"{NAMESPACE}:monitoring.{alarm}.enabled: a production stage keeps every "
                    "alarm; remove the key, or raise the alarm's threshold instead"
                )
    own = f"{stage}/"
    for prefix in config.data_lake.read_prefixes:
        first = prefix.split("/", 1)[0]
        if first != stage and stack_file(stacks_dir, first).is_file():
            errors.append(
                f"{NAMESPACE}:dataLake.readPrefixes: '{prefix}' is the stage '{first}''s own "
                f"prefix; a stage reads shared prefixes and its own ({own}) only"
            )
    return errors


def _raw_delivery(stacks_dir: Path, stage: str) -> dict[str, Any] | None:
    """Another stack's `delivery` block as written (None when absent or unreadable)."""
    try:
        text = stack_file(stacks_dir, stage).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    doc, _ = load_yaml_text(text, STACK_FILE)
    raw = doc.data if doc is not None else None
    config = raw.get("config") if isinstance(raw, dict) else None
    found = config.get(f"{NAMESPACE}:delivery") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else None


def _delivery_rules(stage: str, config: StageConfig, stacks_dir: Path) -> list[str]:
    """A release chain is provisioned whole: one pipeline host, CI roles in every stage of it."""
    delivery = config.delivery
    if delivery is None:
        return []
    errors = []
    others = [s for s in available_stages(stacks_dir) if s != stage]
    if delivery.pipeline is not None:
        hosts = [s for s in others if "pipeline" in (_raw_delivery(stacks_dir, s) or {})]
        if hosts:
            errors.append(
                f"{NAMESPACE}:delivery.pipeline: stack {hosts[0]} hosts the release pipeline too; "
                "one stack hosts it (remove the block from all but one)"
            )
    source = config.promotes_from
    if source is not None and source in others and _raw_delivery(stacks_dir, source) is None:
        errors.append(
            f"{NAMESPACE}:delivery: {stage} promotes from {source}, whose stack has no delivery "
            f"block, so it has no release-reader role to read from; add a delivery block to "
            f"{stack_file(stacks_dir, source).name}"
        )
    for other in others:
        found = _raw_delivery(stacks_dir, other)
        if found is not None and found.get("repository") != delivery.repository:
            errors.append(
                f"{NAMESPACE}:delivery.repository: '{delivery.repository}' differs from stack "
                f"{other}'s '{found.get('repository')}'; every stage releases the same repository"
            )
            break
    return errors
