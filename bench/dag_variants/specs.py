"""The benchmark's pipelines as mwaa-elt specs: N Athena and M EMR pipelines, each with its own
name, schedule, owner and SQL, in a scratch project that `mwaa-elt render` can read.

Athena pipelines have five Athena tasks (two of them in a TaskGroup) and produce a dataset; EMR
pipelines create a cluster, run a Hive and a Spark step (submit + sensor each) and terminate it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("sales", "billing", "inventory", "marketing", "support", "shipping", "payments", "hr")
OWNERS = ("analytics", "finance", "growth", "operations")


@dataclass(frozen=True)
class BenchPipeline:
    """One pipeline of the benchmark: its DAG id and its shape (`athena` or `emr`)."""

    name: str
    kind: str


def athena_name(index: int) -> str:
    return f"{DOMAINS[index % len(DOMAINS)]}_{index:04d}"


def emr_name(index: int) -> str:
    return f"{DOMAINS[index % len(DOMAINS)]}_emr_{index:04d}"


def _athena_spec(index: int) -> tuple[str, dict[str, str]]:
    name = athena_name(index)
    domain = DOMAINS[index % len(DOMAINS)]
    owner = OWNERS[index % len(OWNERS)]
    spec = f"""\
pipeline: {name}
description: {domain.capitalize()} summary {index}, rebuilt from raw orders and customers.
owner: {owner}
tags: [{domain}, summary]
schedule: "{index % 60} {index % 24} * * *"
start_date: 2024-01-01
retries: 2
retry_delay: 5m
on_failure: {{sns_topic: data-alerts}}
produces: [summary]

tasks:
  - id: create_database
    athena: {{sql: "CREATE DATABASE IF NOT EXISTS {{{{ db.analytics }}}}"}}

  - id: create_orders
    group: raw_tables
    athena: {{sql_file: sql/create_orders.sql}}
    depends_on: [create_database]

  - id: create_customers
    group: raw_tables
    athena: {{sql_file: sql/create_customers.sql}}
    depends_on: [create_database]

  - id: drop_summary
    athena: {{sql: "DROP TABLE IF EXISTS {{{{ db.analytics }}}}.{name}_summary"}}
    depends_on: [create_orders, create_customers]

  - id: create_summary
    athena: {{sql_file: sql/create_summary.sql}}
    depends_on: [drop_summary]
"""
    extra = f"channel_{index % 7}"
    sql = {
        "sql/create_orders.sql": f"""\
-- Raw {domain} orders as landed: one CSV line per order, with a header line.
CREATE EXTERNAL TABLE IF NOT EXISTS {{{{ db.analytics }}}}.{name}_orders (
  order_id BIGINT,
  customer_id BIGINT,
  amount DECIMAL(12, 2),
  {extra} STRING,
  ordered_at BIGINT
)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
STORED AS TEXTFILE
LOCATION '{{{{ lake.bucket_uri }}}}landing/{domain}/{name}/orders/'
TBLPROPERTIES ('skip.header.line.count' = '1')
""",
        "sql/create_customers.sql": f"""\
-- Raw {domain} customers as landed.
CREATE EXTERNAL TABLE IF NOT EXISTS {{{{ db.analytics }}}}.{name}_customers (
  customer_id BIGINT,
  country STRING,
  segment_{index % 5} STRING
)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
STORED AS TEXTFILE
LOCATION '{{{{ lake.bucket_uri }}}}landing/{domain}/{name}/customers/'
TBLPROPERTIES ('skip.header.line.count' = '1')
""",
        "sql/create_summary.sql": f"""\
-- Revenue per country and {extra}; each run writes its own folder (a CTAS needs an empty one).
CREATE TABLE {{{{ db.analytics }}}}.{name}_summary
WITH (
  format = 'PARQUET',
  external_location = '{{{{ lake.uri }}}}analytics/{name}_summary/{{{{ ts_nodash }}}}/'
) AS
SELECT
  c.country,
  o.{extra},
  count(*) AS orders,
  sum(o.amount) AS revenue
FROM {{{{ db.analytics }}}}.{name}_orders AS o
JOIN {{{{ db.analytics }}}}.{name}_customers AS c ON c.customer_id = o.customer_id
WHERE o.amount > {index % 50}
GROUP BY c.country, o.{extra}
""",
    }
    return spec, sql


def _emr_spec(index: int) -> tuple[str, dict[str, str]]:
    name = emr_name(index)
    domain = DOMAINS[index % len(DOMAINS)]
    owner = OWNERS[index % len(OWNERS)]
    spec = f"""\
pipeline: {name}
description: {domain.capitalize()} events {index}, cleaned with Hive and sessionised by Spark.
owner: {owner}
tags: [{domain}, emr]
schedule: "{index % 60} {(index + 3) % 24} * * *"
start_date: 2024-01-01
retries: 1
retry_delay: 10m
on_failure: {{sns_topic: data-alerts}}
produces: [sessions]
cluster:
  applications: [Hadoop, Hive, Spark]
  core_instance_count: {1 + index % 3}

tasks:
  - id: clean_events
    hive:
      script: scripts/clean_events.hql
      args:
        ds: "{{{{ ds }}}}"
        source_db: "{{{{ db.analytics }}}}"
        target_db: "{{{{ db.analytics }}}}"
        target_location: "{{{{ lake.uri }}}}curated/{name}/events/"
    timeout: 2h

  - id: build_sessions
    spark:
      script: scripts/sessions.py
      args: ["--ds", "{{{{ ds }}}}", "--database", "{{{{ db.analytics }}}}",
             "--output", "{{{{ lake.uri }}}}curated/{name}/sessions/ds={{{{ ds }}}}/"]
      conf: {{spark.executor.memory: 4g, spark.sql.shuffle.partitions: {32 + index % 64}}}
    depends_on: [clean_events]
    timeout: 2h
"""
    scripts = {
        "scripts/clean_events.hql": f"""\
-- {domain} events of one day, de-duplicated, into a partitioned Parquet table ({name}).
CREATE EXTERNAL TABLE IF NOT EXISTS ${{target_db}}.{name}_events (
  event_id STRING,
  user_id BIGINT,
  kind STRING,
  at TIMESTAMP
)
PARTITIONED BY (ds STRING)
STORED AS PARQUET
LOCATION '${{target_location}}';

INSERT OVERWRITE TABLE ${{target_db}}.{name}_events PARTITION (ds = '${{ds}}')
SELECT DISTINCT event_id, user_id, kind, at
FROM ${{source_db}}.{name}_raw_events
WHERE to_date(at) = '${{ds}}';
""",
        "scripts/sessions.py": f'''\
"""Sessionise one day of {domain} events ({name})."""

import argparse

from pyspark.sql import SparkSession, functions as F

parser = argparse.ArgumentParser()
parser.add_argument("--ds", required=True)
parser.add_argument("--database", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()

spark = SparkSession.builder.appName("{name}").enableHiveSupport().getOrCreate()
events = spark.table(f"{{args.database}}.{name}_events").where(F.col("ds") == args.ds)
sessions = events.groupBy("user_id").agg(F.count("*").alias("events"))
sessions.write.mode("overwrite").parquet(args.output)
''',
    }
    return spec, scripts


def bench_pipelines(athena: int, emr: int) -> list[BenchPipeline]:
    """The pipelines a project made by `write_project(..., athena, emr)` holds, in order."""
    return [BenchPipeline(athena_name(i), "athena") for i in range(athena)] + [
        BenchPipeline(emr_name(i), "emr") for i in range(emr)
    ]


def write_project(target: Path, athena: int, emr: int) -> list[BenchPipeline]:
    """Write a project (stacks, templates, pipelines) with `athena` + `emr` distinct pipelines."""
    shutil.copy(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", target / "stacks")
    shutil.copytree(ROOT / "dag_templates", target / "dag_templates")
    for pipeline, (spec, files) in zip(
        bench_pipelines(athena, emr),
        [_athena_spec(i) for i in range(athena)] + [_emr_spec(i) for i in range(emr)],
        strict=True,
    ):
        folder = target / "pipelines" / pipeline.name
        for relative, text in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)
        (folder / f"{pipeline.name}.yaml").write_text(spec)
    return bench_pipelines(athena, emr)
