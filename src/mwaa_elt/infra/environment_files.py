"""requirements.txt, plugins.zip and the startup script as versioned objects in the bucket."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.environment_files import (
    build_plugins_zip,
    build_requirements,
    read_startup_script,
)
from mwaa_elt.infra.storage import SecureBucket
from mwaa_elt.stage import Stage

# Where each file's source lives inside the project's environment folder (infra/environment/).
REQUIREMENTS_SOURCE = "requirements.txt"
PLUGINS_SOURCE = "plugins"
STARTUP_SCRIPT_SOURCE = "startup.sh"


@dataclass(frozen=True)
class EnvironmentFilesArgs:
    """The stage, its (versioned) source bucket, and the folder the three sources live in."""

    stage: Stage
    bucket: SecureBucket
    source_dir: Path


class EnvironmentFiles(pulumi.ComponentResource):
    """The three objects whose version ids the MWAA environment pins."""

    requirements: aws.s3.BucketObjectv2
    plugins: aws.s3.BucketObjectv2
    startup_script: aws.s3.BucketObjectv2

    def __init__(
        self, name: str, args: EnvironmentFilesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:mwaa:EnvironmentFiles", name, None, opts)
        stage, source = args.stage, args.source_dir
        paths = stage.paths
        self.requirements = self._object(
            f"{name}-requirements",
            args.bucket,
            paths.requirements,
            build_requirements(stage, source / REQUIREMENTS_SOURCE),
            "text/plain",
        )
        self.plugins = self._object(
            f"{name}-plugins",
            args.bucket,
            paths.plugins,
            build_plugins_zip(source / PLUGINS_SOURCE),
            "application/zip",
        )
        self.startup_script = self._object(
            f"{name}-startup-script",
            args.bucket,
            paths.startup_script,
            read_startup_script(source / STARTUP_SCRIPT_SOURCE),
            "text/x-sh",
        )
        self.register_outputs(
            {
                "requirements_version": self.requirements.version_id,
                "plugins_version": self.plugins.version_id,
                "startup_script_version": self.startup_script.version_id,
            }
        )

    def _object(
        self, name: str, bucket: SecureBucket, key: str, content: bytes, content_type: str
    ) -> aws.s3.BucketObjectv2:
        return aws.s3.BucketObjectv2(
            name,
            bucket=bucket.name,
            key=key,
            # Base64 carries the zip's bytes unchanged; the builders make them reproducible.
            content_base64=base64.b64encode(content).decode("ascii"),
            content_type=content_type,
            # Versioning must be on before the upload, or the object has no version id to pin.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket]),
        )
