"""Where the environment runs: a new VPC or an existing one, its security group and endpoints."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.stage import EMR_MANAGED_POLICIES_TAG, MWAA_INTERFACE_ENDPOINTS, Stage

# EMR's managed service policy v2 only launches clusters into subnets and groups with this tag.
EMR_MANAGED_TAG = dict([EMR_MANAGED_POLICIES_TAG])
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class NetworkArgs:
    """The stage whose `network` settings describe the VPC."""

    stage: Stage


@dataclass(frozen=True)
class _Vpc:
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: pulumi.Output[list[str]]


class Network(pulumi.ComponentResource):
    """The VPC, two private subnets in two zones, a self-referencing security group, endpoints."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:network:Network", name, None, opts)
        stage = args.stage
        existing = stage.config.network.existing
        vpc = self._create_vpc(name, stage) if existing is None else self._use_vpc(name, stage)

        group = aws.ec2.SecurityGroup(
            f"{name}-security-group",
            name=stage.security_group_name,
            # The first environment's name, whichever serves the stage: a description changed
            # by retiring blue would update (a security group: replace) this shared resource.
            description=f"MWAA environment {stage.resource_prefix}: members reach each other",
            vpc_id=vpc.vpc_id,
            # MWAA's workers, scheduler and webserver talk to each other and to the endpoints.
            ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [ANYWHERE]}],
            tags=EMR_MANAGED_TAG,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if stage.config.network.private_endpoints:
            self._endpoints(name, stage, vpc, group)

        self.vpc_id = vpc.vpc_id
        self.private_subnet_ids = pulumi.Output.all(*vpc.private_subnet_ids)
        self.security_group_id = group.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "security_group_id": self.security_group_id,
            }
        )

    def _create_vpc(self, name: str, stage: Stage) -> _Vpc:
        network = stage.config.network
        assert network.vpc_cidr is not None
        child = pulumi.ResourceOptions(parent=self)
        # Four equal quarters: two private subnets for MWAA and EMR, two public for the NATs.
        quarters = [
            str(block)
            for block in ipaddress.IPv4Network(network.vpc_cidr).subnets(prefixlen_diff=2)
        ]
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=network.vpc_cidr,
            enable_dns_hostnames=True,  # private DNS of interface endpoints needs both
            enable_dns_support=True,
            tags={"Name": stage.vpc_name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-internet-gateway", vpc_id=vpc.id, tags={"Name": stage.vpc_name}, opts=child
        )
        public_table = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=vpc.id,
            tags={"Name": f"{stage.vpc_name}-public"},
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-public-default-route",
            route_table_id=public_table.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=gateway.id,
            opts=child,
        )
        private_subnets: list[aws.ec2.Subnet] = []
        private_tables: list[aws.ec2.RouteTable] = []
        nats: list[aws.ec2.NatGateway] = []
        for index, zone in enumerate(stage.availability_zones):
            suffix = zone.removeprefix(stage.region)
            public = aws.ec2.Subnet(
                f"{name}-public-{suffix}",
                vpc_id=vpc.id,
                cidr_block=quarters[2 + index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{stage.vpc_name}-public-{suffix}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{suffix}-association",
                subnet_id=public.id,
                route_table_id=public_table.id,
                opts=child,
            )
            if index < network.nat_gateways:
                address = aws.ec2.Eip(
                    f"{name}-nat-{suffix}-address",
                    domain="vpc",
                    tags={"Name": f"{stage.vpc_name}-nat-{suffix}"},
                    opts=child,
                )
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{suffix}",
                        allocation_id=address.id,
                        subnet_id=public.id,
                        tags={"Name": f"{stage.vpc_name}-nat-{suffix}"},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                    )
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{suffix}",
                vpc_id=vpc.id,
                cidr_block=quarters[index],
                availability_zone=zone,
                tags={"Name": f"{stage.vpc_name}-private-{suffix}", **EMR_MANAGED_TAG},
                opts=child,
            )
            table = aws.ec2.RouteTable(
                f"{name}-private-{suffix}-routes",
                vpc_id=vpc.id,
                tags={"Name": f"{stage.vpc_name}-private-{suffix}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{suffix}-association",
                subnet_id=private.id,
                route_table_id=table.id,
                opts=child,
            )
            private_subnets.append(private)
            private_tables.append(table)
        for index, table in enumerate(private_tables):
            if not nats:
                break  # no NAT: AWS services are reached through the endpoints only
            suffix = stage.availability_zones[index].removeprefix(stage.region)
            aws.ec2.Route(
                f"{name}-private-{suffix}-default-route",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nats[min(index, len(nats) - 1)].id,
                opts=child,
            )
        return _Vpc(
            vpc_id=vpc.id,
            private_subnet_ids=[subnet.id for subnet in private_subnets],
            private_route_table_ids=pulumi.Output.all(*(table.id for table in private_tables)),
        )

    def _use_vpc(self, name: str, stage: Stage) -> _Vpc:
        existing = stage.config.network.existing
        assert existing is not None
        # The VPC belongs to someone else; only the tag EMR needs is added to its subnets.
        (key, value), *_ = EMR_MANAGED_TAG.items()
        for index, subnet_id in enumerate(existing.private_subnet_ids):
            aws.ec2.Tag(
                f"{name}-private-{index}-emr-tag",
                resource_id=subnet_id,
                key=key,
                value=value,
                opts=pulumi.ResourceOptions(parent=self),
            )
        tables = pulumi.Output.from_input([])
        if stage.config.network.private_endpoints:
            tables = aws.ec2.get_route_tables_output(
                vpc_id=existing.vpc_id,
                filters=[{"name": "association.subnet-id", "values": existing.private_subnet_ids}],
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).ids
        return _Vpc(
            vpc_id=pulumi.Output.from_input(existing.vpc_id),
            private_subnet_ids=[pulumi.Output.from_input(s) for s in existing.private_subnet_ids],
            private_route_table_ids=tables,
        )

    def _endpoints(self, name: str, stage: Stage, vpc: _Vpc, group: aws.ec2.SecurityGroup) -> None:
        child = pulumi.ResourceOptions(parent=self)
        aws.ec2.VpcEndpoint(
            f"{name}-endpoint-s3",
            vpc_id=vpc.vpc_id,
            service_name=stage.endpoint_service_name("s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=vpc.private_route_table_ids,
            opts=child,
        )
        for service in MWAA_INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{service.replace('.', '-')}",
                vpc_id=vpc.vpc_id,
                service_name=stage.endpoint_service_name(service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=vpc.private_subnet_ids,
                security_group_ids=[group.id],
                opts=child,
            )
