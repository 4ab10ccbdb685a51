"""An account-free AWS for promotion: moto's server on loopback with every stage's bucket."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from mwaa_elt.errors import ConfigError
from mwaa_elt.stage import Stage

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def create_stage_buckets(endpoint_url: str, stages: Mapping[str, Stage]) -> list[str]:
    """Create each stage's source bucket (versioned, as Pulumi provisions it) if missing."""
    created: list[str] = []
    for stage in stages.values():
        s3 = _client(endpoint_url, stage.region)
        try:
            s3.head_bucket(Bucket=stage.source_bucket)
            continue
        except s3.exceptions.ClientError:
            pass
        if stage.region == "us-east-1":
            s3.create_bucket(Bucket=stage.source_bucket)
        else:
            s3.create_bucket(
                Bucket=stage.source_bucket,
                CreateBucketConfiguration={"LocationConstraint": stage.region},
            )
        s3.put_bucket_versioning(
            Bucket=stage.source_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        created.append(stage.source_bucket)
    return created


def _client(endpoint_url: str, region: str) -> Any:
    # The sandbox accepts any credentials; fixed ones keep it independent of the user's.
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    ).client("s3", endpoint_url=endpoint_url)


@dataclass(frozen=True)
class Sandbox:
    """A running emulator: point tools at it with `AWS_ENDPOINT_URL=<endpoint_url>`."""

    endpoint_url: str
    buckets: tuple[str, ...]


@contextmanager
def sandbox(stages: Mapping[str, Stage], *, port: int | None = None) -> Iterator[Sandbox]:
    """Run moto's server on loopback with every stage's bucket for the `with` block."""
    try:
        from moto.server import ThreadedMotoServer  # an optional dependency: import when used
    except ImportError:
        raise ConfigError(
            "the sandbox needs moto's server: pip install 'mwaa-elt[sandbox]' "
            "(make demo installs it)"
        ) from None

    port = port or free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://{HOST}:{port}"
        create_stage_buckets(endpoint, stages)
        yield Sandbox(endpoint, tuple(sorted(s.source_bucket for s in stages.values())))
    finally:
        server.stop()
