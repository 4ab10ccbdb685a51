"""Execute a run plan: a fresh sandbox seeded as the stage, the DAGs run by Airflow, a report.

The sandbox is moto's server on loopback, in this process, with the emulation installed
(`emulation.py`: Athena on DuckDB, EMR steps checked). Airflow runs in the stage's Airflow
environment as a subprocess (`dagrun_probe.py`), every AWS call going to the sandbox through
`AIRFLOW_CONN_AWS_DEFAULT` and `AWS_ENDPOINT_URL`, with credentials of the stage's account.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mwaa_elt import airflow_environments as environments
from mwaa_elt.errors import ConfigError, ExternalError
from mwaa_elt.promote.sandbox import HOST, free_port
from mwaa_elt.run import emulation
from mwaa_elt.run.plan import (
    CreateBucket,
    CreateDatabase,
    CreateRole,
    CreateSubnet,
    CreateTopic,
    CreateWorkgroup,
    PutObject,
    RunPlan,
)
from mwaa_elt.stage import Stage

PROBE = Path(__file__).with_name("dagrun_probe.py")
RUN_TIMEOUT_SECONDS = 900.0
SENSOR_TIMEOUT_SECONDS = 10.0
# Task states that count as a clean run; anything else fails it.
GOOD_STATES = ("success", "skipped")


@dataclass(frozen=True)
class TaskResult:
    """One task of a local run: its state and time, what it ran, rows written, its error."""

    dag_id: str
    task_id: str
    operator: str | None
    state: str
    seconds: float | None
    ran: str | None  # the query, the EMR step or the S3 key the task worked on
    rows_written: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.state in GOOD_STATES


@dataclass(frozen=True)
class DagResult:
    """One DAG run of a local run."""

    dag_id: str
    upstream: bool
    state: str
    seconds: float
    tasks: tuple[TaskResult, ...]
    run_pass: int = 1  # 2 for the re-run of the same date (--rerun)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tasks) and self.state == "success"


@dataclass(frozen=True)
class RunReport:
    """What a local run did, and whether every task succeeded or was skipped by design."""

    stage: str
    airflow_version: str
    logical_date: str
    seconds: float
    dags: tuple[DagResult, ...]
    clusters_left: tuple[str, ...]  # EMR clusters not terminated when the run ended

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.dags) and not self.clusters_left

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stage": self.stage,
            "airflow_version": self.airflow_version,
            "logical_date": self.logical_date,
            "seconds": round(self.seconds, 2),
            "clusters_left": list(self.clusters_left),
            "dags": [
                {
                    "dag_id": d.dag_id,
                    "upstream": d.upstream,
                    "pass": d.run_pass,
                    "state": d.state,
                    "seconds": round(d.seconds, 2),
                    "tasks": [
                        {
                            "task_id": t.task_id,
                            "operator": t.operator,
                            "state": t.state,
                            "seconds": None if t.seconds is None else round(t.seconds, 2),
                            "ran": t.ran,
                            "rows_written": t.rows_written,
                            "error": t.error,
                        }
                        for t in d.tasks
                    ],
                }
                for d in self.dags
            ],
        }


# -- the Airflow environment ------------------------------------------------------------------


def airflow_python(stage: Stage, project_root: Path) -> Path:
    """The Python of the stage's MWAA environment (`airflow_environments`, one locator for all)."""
    return environments.airflow_python(stage.airflow.version, project_root)


def _airflow_environment(home: Path, dags: Path, stage: Stage) -> dict[str, str]:
    """The caller's environment without Airflow or AWS settings, plus a throw-away Airflow home."""
    from mwaa_elt.infra.environment import airflow_configuration_options

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "AWS_")) and key not in ("PYTHONPATH", "PYTHONHOME")
    }
    # The stage's own Airflow options (its Secrets Manager backend included), as MWAA sets them.
    for option, value in airflow_configuration_options(stage).items():
        section, _, key = option.partition(".")
        env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        # Loading one DAG file is not what a local run measures: a loaded machine must not fail it.
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="600",
        # The Execution API of Airflow 3 signs task tokens; any fixed secret will do locally.
        AIRFLOW__API_AUTH__JWT_SECRET="mwaa-elt-local-run",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mwaa-elt" / "airflow-db"


def prepared_database(python: Path, home: Path, env: dict[str, str]) -> None:
    """Put a migrated Airflow metadata database in `home`: migrated once per environment, copied."""
    cache = _cache_dir()
    # Not resolved: a venv's python is a symlink to the base interpreter that several venvs share.
    tag = hashlib.sha256(str(python.absolute()).encode()).hexdigest()[:16]
    template = cache / f"{tag}.db"
    if not template.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mwaa-elt-db-") as scratch:
            migrate_env = dict(env, AIRFLOW_HOME=scratch)
            migrate_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{scratch}/airflow.db"
            done = subprocess.run(
                [str(python), "-m", "airflow", "db", "migrate"],
                env=migrate_env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_SECONDS,
                check=False,
            )
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-10:])
                raise ExternalError(f"`airflow db migrate` ({python}) failed:\n{tail}")
            partial = template.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(Path(scratch) / "airflow.db", partial)
            partial.replace(template)  # atomic: concurrent runs never see half a file
    shutil.copyfile(template, home / "airflow.db")


# -- the sandbox --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An access key of the stage's account in the sandbox: moto files calls by their key."""

    access_key_id: str
    secret_access_key: str


@contextmanager
def running_sandbox() -> Iterator[str]:
    """moto's server on loopback with the emulation installed; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ConfigError(
            "a local run needs moto's server and DuckDB: pip install 'mwaa-elt[sandbox]'"
        ) from None
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    # moto's state lives in the process: whatever used it before (a promotion sandbox, a test)
    # must not be in this run's account, or seeding a bucket of the same name fails.
    _reset_moto()
    with emulation.installed():
        server.start()
        try:
            yield f"http://{HOST}:{port}"
        finally:
            server.stop()
            _reset_moto()


def _reset_moto() -> None:
    """Forget the sandbox's state: a run starts from what the plan seeds, nothing else."""
    from moto.backends import get_backend

    for service in ("s3", "athena", "glue", "emr", "iam", "sns", "secretsmanager", "ec2", "sts"):
        for account in list(get_backend(service).keys()):
            get_backend(service)[account].reset()


def stage_credentials(stage: Stage) -> Credentials:
    from moto.iam.models import iam_backends

    key = iam_backends[stage.account_id][stage.partition].create_temp_access_key()
    return Credentials(key.access_key_id, key.secret_access_key)


def _client(service: str, endpoint: str, stage: Stage, creds: Credentials) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        region_name=stage.region,
    ).client(service, endpoint_url=endpoint)


def seed(plan: RunPlan, endpoint: str, creds: Credentials) -> None:
    """Create what the plan seeds, through the AWS APIs, in the stage's account and region."""
    stage = plan.stage

    def client(service: str) -> Any:
        return _client(service, endpoint, stage, creds)

    s3, iam = client("s3"), client("iam")
    for step in plan.seed:
        match step:
            case CreateBucket(bucket=bucket):
                location = (
                    {}
                    if stage.region == "us-east-1"
                    else {"CreateBucketConfiguration": {"LocationConstraint": stage.region}}
                )
                s3.create_bucket(Bucket=bucket, **location)
                s3.put_bucket_versioning(
                    Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
                )
            case PutObject(bucket=bucket, key=key, data=data):
                s3.put_object(Bucket=bucket, Key=key, Body=data)
            case CreateWorkgroup(name=name, output_location=output):
                client("athena").create_work_group(
                    Name=name,
                    Configuration={
                        "ResultConfiguration": {"OutputLocation": output},
                        "EnforceWorkGroupConfiguration": True,
                    },
                )
            case CreateDatabase(name=name, location=location):
                client("glue").create_database(
                    DatabaseInput={"Name": name, "LocationUri": location}
                )
            case CreateRole(name=name, service=service, instance_profile=profile):
                trust = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
                if profile:
                    iam.create_instance_profile(InstanceProfileName=profile)
                    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=name)
            case CreateTopic(name=name):
                client("sns").create_topic(Name=name)
            case CreateSubnet(cidr=cidr, secret_name=secret):
                ec2 = client("ec2")
                vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
                subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
                client("secretsmanager").create_secret(Name=secret, SecretString=subnet)


# -- running ------------------------------------------------------------------------------------


def run_plan(
    plan: RunPlan,
    python: Path,
    *,
    sensor_timeout: float = SENSOR_TIMEOUT_SECONDS,
    rerun: bool = False,
) -> RunReport:
    """Seed a fresh sandbox as the plan says, run its DAGs with Airflow there, and report.

    With `rerun`, every DAG runs a second time for the same date in the same sandbox, as after
    Airflow's "clear": a pipeline that cannot be re-run fails there.
    """
    started = time.monotonic()
    stage = plan.stage
    with tempfile.TemporaryDirectory(prefix="mwaa-elt-run-") as scratch:
        home, dags = Path(scratch) / "home", Path(scratch) / "dags"
        home.mkdir()
        dags.mkdir()
        for run in plan.dags:
            (dags / Path(run.dag_path).name).write_bytes(plan.files[run.dag_path])
        env = _airflow_environment(home, dags, stage)
        prepared_database(python, home, env)
        with running_sandbox() as endpoint:
            creds = stage_credentials(stage)
            seed(plan, endpoint, creds)
            env.update(_aws_environment(stage, endpoint, creds))
            result = _probe(
                python, plan, dags, env, Path(scratch) / "result.json", sensor_timeout, rerun
            )
            journal = emulation.JOURNAL
            clusters = _clusters_left(stage)
            dag_results = tuple(_dag_result(run_json, plan, journal) for run_json in result["runs"])
    return RunReport(
        stage=stage.name,
        airflow_version=result["airflow_version"],
        logical_date=plan.logical_date.isoformat(),
        seconds=time.monotonic() - started,
        dags=dag_results,
        clusters_left=clusters,
    )


def _aws_environment(stage: Stage, endpoint: str, creds: Credentials) -> dict[str, str]:
    connection = {
        "conn_type": "aws",
        "login": creds.access_key_id,
        "password": creds.secret_access_key,
        "extra": {"region_name": stage.region, "endpoint_url": endpoint},
    }
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_DEFAULT_REGION": stage.region,
        "AWS_REGION": stage.region,
    }


def _probe(
    python: Path,
    plan: RunPlan,
    dags: Path,
    env: dict[str, str],
    out: Path,
    sensor_timeout: float,
    rerun: bool,
) -> dict[str, Any]:
    command = [str(python), str(PROBE), "--logical-date", plan.logical_date.isoformat()]
    command += ["--passes", "2" if rerun else "1"]
    command += ["--sensor-timeout", str(sensor_timeout), "--out", str(out)]
    for run in plan.dags:
        command += ["--dag-file", str(dags / Path(run.dag_path).name), "--dag-id", run.dag_id]
    try:
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ExternalError(
            f"the local run did not finish in {RUN_TIMEOUT_SECONDS:.0f} s"
        ) from error
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ExternalError(f"Airflow ({python}) failed with exit code {done.returncode}:\n{tail}")
    result = json.loads(out.read_text())
    if "error" in result:
        raise ExternalError(f"Airflow could not run the DAGs: {result['error']}")
    return result


def _clusters_left(stage: Stage) -> tuple[str, ...]:
    from moto.emr.models import emr_backends

    backend = emr_backends[stage.account_id][stage.region]
    return tuple(sorted(c.id for c in backend.clusters.values() if c.state not in ("TERMINATED",)))


def _dag_result(run: dict[str, Any], plan: RunPlan, journal: emulation.Journal) -> DagResult:
    upstream = next(d.upstream for d in plan.dags if d.dag_id == run["dag_id"])
    # Only what the sandbox did while this DAG ran (a re-run repeats the same statements).
    window = emulation.Journal(
        queries=[q for q in journal.queries if run["began"] <= q.at <= run["ended"]],
        steps=[s for s in journal.steps if run["began"] <= s.at <= run["ended"]],
    )
    tasks = tuple(_task_result(run["dag_id"], task, window) for task in run["tasks"])
    return DagResult(
        run["dag_id"], upstream, run["state"], run["seconds"], tasks, run.get("pass", 1)
    )


def _task_result(dag_id: str, task: dict[str, Any], journal: emulation.Journal) -> TaskResult:
    # What the sandbox did while this task ran (dag.test runs one task at a time).
    windows = [tuple(w) for w in task.get("windows") or []]

    def during(at: float) -> bool:
        return any(began <= at <= ended for began, ended in windows)

    mine = emulation.Journal(
        queries=[q for q in journal.queries if during(q.at)],
        steps=[s for s in journal.steps if during(s.at)],
    )
    fields = task.get("fields") or {}
    ran, rows, reason = _what_ran(dag_id, task["task_id"], fields, mine, journal)
    error = task.get("error")
    if task["state"] not in GOOD_STATES:
        # The engine's own words beat an operator's summary of a waiter's failure.
        error = reason or error or f"ended {task['state']}"
    return TaskResult(
        dag_id=dag_id,
        task_id=task["task_id"],
        operator=task.get("operator"),
        state=task["state"],
        seconds=task.get("seconds"),
        ran=ran,
        rows_written=rows,
        error=error,
    )


def _what_ran(
    dag_id: str,
    task_id: str,
    fields: dict[str, Any],
    mine: emulation.Journal,
    journal: emulation.Journal,
) -> tuple[str | None, int | None, str | None]:
    """(what the task ran, rows it wrote, the sandbox's failure reason) from the journal."""
    if mine.queries:
        last = mine.queries[-1]
        rows = sum(q.rows_written or 0 for q in mine.queries)
        written = any(q.rows_written is not None for q in mine.queries)
        failed = next((q for q in mine.queries if q.state == "FAILED"), None)
        shown = _without_comments((failed or last).query)
        return shown, rows if written else None, failed.reason if failed else None
    step_name = f"{dag_id}.{task_id.removesuffix('_submit')}"
    step = next((s for s in reversed(journal.steps) if s.name == step_name), None)
    if step is not None and ("steps" in fields or "step_id" in fields or mine.steps):
        ran = f"EMR step {step.name}: {step.script or 'command-runner'}"
        return ran, None, step.reason if step.state == "FAILED" else None
    query = fields.get("query")
    if query is None and isinstance(fields.get("op_kwargs"), dict):
        query = fields["op_kwargs"].get("sql")
    if isinstance(query, str):
        return _without_comments(query), None, None
    if isinstance(fields.get("bucket_key"), str | list):
        return f"wait for {fields['bucket_key']}", None, None
    if isinstance(fields.get("bucket"), str):
        return f"delete s3://{fields['bucket']}/{fields.get('prefix') or ''}", None, None
    return None, None, None


def _without_comments(sql: str) -> str:
    """The statement without its `--` comment lines: what a table of tasks should show."""
    return "\n".join(line for line in sql.strip().splitlines() if not line.strip().startswith("--"))
