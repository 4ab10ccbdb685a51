"""What `pulumi up` would declare for a stage: the program run in-process under Pulumi's mocks.

No engine, no credentials, no AWS: the mocks answer with plausible ids and ARNs, and every
registration is recorded as data for the CLI to print and the tests to assert on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.rpc import deserialize_properties

from mwaa_elt.infra.program import provision
from mwaa_elt.stage import Stage

PROJECT = "mwaa-elt"
# How the wire marks a secret value (pulumi.runtime.rpc): {SIG_KEY: SECRET_SIG, "value": ...}.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
# Prefixes of the ids AWS gives these resources, so a previewed reference reads like the real one.
ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/route:Route": "r",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
}


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program declares: where it sits, how it is managed, what it is set to."""

    type: str
    name: str
    parent: str | None
    protected: bool
    provider: str | None
    custom: bool
    settings: dict[str, Any] = field(hash=False)
    # Adoption (`adopt:`): the id Pulumi imports, what it ignores until then, kept on delete.
    import_id: str | None = None
    ignore_changes: tuple[str, ...] = ()
    retain_on_delete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Preview:
    """Every declared resource (parents before children), the stack outputs, and per resource
    name the state the mocks answered with (ids, ARNs, object versions)."""

    resources: list[PlannedResource]
    outputs: dict[str, Any]
    states: dict[str, dict[str, Any]]
    invokes: list[tuple[str, str | None]]  # (function token, provider name), in call order


def preview_stage(stage: Stage, environment_dir: Path | None = None) -> list[PlannedResource]:
    """The resources `pulumi up --stack <stage>` would declare, parents before their children."""
    return run_preview(stage, environment_dir).resources


def run_preview(stage: Stage, environment_dir: Path | None = None) -> Preview:
    """Run `provision(stage)` under mocks; safe to call repeatedly, for any stage, in a process."""
    mocks = _PlausibleMocks(stage)
    monitor = _RecordingMonitor(mocks)
    # set_mocks keeps an existing root stack; a fresh one keeps runs from sharing state.
    settings.ROOT.set(None)
    set_mocks(mocks, project=PROJECT, stack=stage.name, preview=True, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        declared = provision(stage, environment_dir)
        return pulumi.Output.from_input(declared).apply(outputs.update)

    program()
    return Preview(
        resources=monitor.planned(),
        outputs=dict(sorted(outputs.items())),
        states=monitor.states(),
        invokes=monitor.invokes(),
    )


class _RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping what the engine would see: parent, provider, protect."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self._names: dict[str, str | None] = {}
        self._registrations: list[Any] = []
        self._invokes: list[tuple[str, str]] = []

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        response = super().RegisterResource(request)
        self._names[response.urn] = None if request.type == STACK_TYPE else request.name
        if request.type != STACK_TYPE:
            self._registrations.append(request)
        return response

    def Invoke(self, request: Any) -> Any:  # the gRPC method's name
        self._invokes.append((request.tok, request.provider))
        return super().Invoke(request)

    def invokes(self) -> list[tuple[str, str | None]]:
        return [(token, self._names.get(_provider_urn(ref))) for token, ref in self._invokes]

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            self._names[urn] or "": _plain(dict(registration.state))
            for urn, registration in sorted(self.resources.items())
        }

    def planned(self) -> list[PlannedResource]:
        children: dict[str | None, list[PlannedResource]] = defaultdict(list)
        for request in self._registrations:
            parent = self._names.get(request.parent) if request.parent else None
            resource = PlannedResource(
                type=request.type,
                name=request.name,
                parent=parent,
                protected=bool(request.protect),
                provider=self._names.get(_provider_urn(request.provider)),
                custom=bool(request.custom),
                settings=_settings(request.type, deserialize_properties(request.object)),
                import_id=request.importId or None,
                ignore_changes=tuple(request.ignoreChanges),
                retain_on_delete=bool(request.retainOnDelete),
            )
            children[parent].append(resource)
        ordered: list[PlannedResource] = []

        def visit(parent: str | None) -> None:
            for resource in sorted(children.get(parent, []), key=lambda r: (r.name, r.type)):
                ordered.append(resource)
                visit(resource.name)

        visit(None)
        return ordered


def _provider_urn(reference: str) -> str:
    # A provider reference is "<urn>::<id>", and the urn itself contains "::".
    return reference.rsplit("::", 1)[0] if reference else ""


def _settings(type_: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs as set, but an object's content as its size and digest.

    A provider's nested inputs arrive JSON-encoded and are decoded.
    """
    result: dict[str, Any] = {}
    for key, raw in sorted(inputs.items()):
        value = _plain(raw)
        if value is None:
            continue
        if key == "contentBase64":
            content = base64.b64decode(value)
            result["contentBytes"] = len(content)
            result["contentSha256"] = hashlib.sha256(content).hexdigest()
            continue
        if type_.startswith(PROVIDER_TYPE_PREFIX) and isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = value
            value = decoded if isinstance(decoded, dict | list) else value
        result[key] = value
    return result


def _plain(value: Any) -> Any:
    """A wire value as the program wrote it: secrets unwrapped, whole numbers as ints."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return _plain(value.get("value"))
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries every number as a double
    return value


class _PlausibleMocks(Mocks):
    """Deterministic ids and ARNs in the stage's account and region, shaped like AWS's."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        stage, inputs = self.stage, dict(args.inputs)
        if args.typ.startswith(PROVIDER_TYPE_PREFIX):
            return f"{args.name}-id", inputs
        digest = hashlib.sha256(f"{stage.name}:{args.typ}:{args.name}".encode()).hexdigest()
        service = args.typ.split(":")[1].split("/")[0]
        p, region, account = stage.partition, stage.region, stage.account_id
        name = inputs.get("name") or inputs.get("bucket")
        resource_id = f"{ID_PREFIXES[args.typ]}-{digest[:17]}" if args.typ in ID_PREFIXES else None
        state: dict[str, Any] = {}
        if args.typ == "aws:s3/bucket:Bucket":
            resource_id = name
            state["arn"] = f"arn:{p}:s3:::{name}"
        elif args.typ == "aws:kms/key:Key":
            # An imported (adopted) key keeps its id, so its ARN is the one MWAA names.
            resource_id = args.resource_id or str(uuid.UUID(hex=digest[:32]))
            state["keyId"] = resource_id
            state["arn"] = f"arn:{p}:kms:{region}:{account}:key/{resource_id}"
        elif args.typ in {"aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"}:
            kind = "role" if args.typ.endswith("Role") else "instance-profile"
            resource_id = name
            state["arn"] = f"arn:{p}:iam::{account}:{kind}/{name}"
        elif args.typ == "aws:mwaa/environment:Environment":
            resource_id = name
            state["arn"] = f"arn:{p}:airflow:{region}:{account}:environment/{name}"
            state["webserverUrl"] = f"{digest[:36]}.c2.{region}.airflow.{stage.dns_suffix}"
        elif args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            resource_id = f"{inputs['bucket']}/{inputs['key']}"
            state["versionId"] = digest[:32]
        elif args.typ == "aws:athena/workgroup:Workgroup":
            resource_id = name
            state["arn"] = f"arn:{p}:athena:{region}:{account}:workgroup/{name}"
        elif args.typ == "aws:glue/catalogDatabase:CatalogDatabase":
            resource_id = f"{account}:{name}"
            state["arn"] = f"arn:{p}:glue:{region}:{account}:database/{name}"
        if resource_id is None:
            resource_id = name or digest[:20]
        state.setdefault("arn", f"arn:{p}:{service}:{region}:{account}:{resource_id}")
        return resource_id, {**inputs, "id": resource_id, **state}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:ec2/getRouteTables:getRouteTables":
            # The route tables the existing private subnets are associated with.
            ids = [
                f"rtb-{hashlib.sha256(str(f).encode()).hexdigest()[:17]}"
                for f in args.args.get("filters", [{}])[0].get("values", [])
            ]
            return {"id": args.args.get("vpcId", ""), "ids": ids}, []
        # An invoke nobody taught the mocks would silently return nothing; say so instead.
        raise NotImplementedError(f"the preview mocks do not answer {args.token}; add it to call()")
