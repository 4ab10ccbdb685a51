"""`mwaa-elt new`: a commented, valid starting spec for an Athena or an EMR pipeline."""

from __future__ import annotations

import re
from pathlib import Path

from mwaa_elt.errors import ConfigError

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_ATHENA_SPEC = """\
# yaml-language-server: $schema=../pipeline.schema.json
# {name}: an Athena ELT pipeline. `mwaa-elt validate` checks it;
# `mwaa-elt render --stage dev` turns it into an Airflow DAG. SQL may use stage variables —
# {{{{ db.<name> }}}} for the stage's Glue databases, {{{{ lake.uri }}}} for its data-lake
# folder — and Airflow macros like {{{{ ds }}}}.
pipeline: {name}
description: What this pipeline builds, for whoever reads the DAG in the Airflow UI.
owner: analytics              # the team to call when it fails (not "airflow")
tags: [{name}]
# schedule: cron, @daily/@hourly/..., null for manual, or {{after: [pipeline.dataset]}}
schedule: "0 6 * * *"
start_date: 2024-01-01
retries: 2
retry_delay: 5m
# on_failure: {{email: [team@example.com], sns_topic: data-alerts}}
# produces: [daily_summary]   # datasets other pipelines can schedule on
stages:
  dev: {{paused: true}}         # per-stage overrides: schedule, paused, retries, cluster, ...

tasks:
  - id: create_table
    athena: {{sql_file: sql/create_table.sql}}

  - id: load_day
    athena:
      sql: |
        INSERT INTO {{{{ db.analytics }}}}.{name}
        SELECT '{{{{ ds }}}}' AS ds, count(*) AS row_count
        FROM {{{{ db.analytics }}}}.{name}
    depends_on: [create_table]

  - id: has_rows
    check: {{table: "{{{{ db.analytics }}}}.{name}", row_count_min: 1}}
    depends_on: [load_day]
"""

_ATHENA_SQL = """\
CREATE EXTERNAL TABLE IF NOT EXISTS {{{{ db.analytics }}}}.{name} (
  ds string,
  row_count bigint
)
STORED AS PARQUET
LOCATION '{{{{ lake.uri }}}}{name}/'
"""

_ATHENA_TEST = """\
# yaml-language-server: $schema=../../test.schema.json
# SQL unit tests of {name}: `mwaa-elt test {name}` runs each task's query on DuckDB with the
# rows under `given` and compares its answer with `expect` (see docs/pipelines.md).
tests:
  - name: load_day_counts_the_rows
    description: load_day writes the logical date and how many rows the table holds.
    task: load_day
    logical_date: 2024-01-02      # {{{{ ds }}}} renders as 2024-01-02
    given:
      analytics.{name}:           # <logical database>.<table>; types from create_table's DDL
        - {{ds: "2024-01-01", row_count: 10}}
        - {{ds: "2023-12-31", row_count: 7}}
    expect:
      rows:
        - {{ds: "2024-01-02", row_count: 2}}

  - name: has_rows_fails_on_an_empty_table
    task: has_rows
    given:
      analytics.{name}: []
    expect: {{value: false}}      # a check answers true (passes) or false (fails the task)
"""

_EMR_SPEC = """\
# yaml-language-server: $schema=../pipeline.schema.json
# {name}: Hive and Spark steps on a transient EMR cluster, created for each run and always
# terminated. Cluster settings default to the stage's (stacks/Pulumi.<stage>.yaml, emr:).
pipeline: {name}
description: What this pipeline computes on EMR, for whoever reads the DAG in the Airflow UI.
owner: analytics              # the team to call when it fails (not "airflow")
tags: [{name}, emr]
schedule: "@daily"
start_date: 2024-01-01
retries: 1
retry_delay: 10m
cluster:                      # any field may be left out to use the stage's default
  applications: [Hadoop, Hive, Spark]
  core_instance_count: 2
stages:
  dev: {{paused: true}}
  prod: {{cluster: {{core_instance_count: 4}}}}

tasks:
  - id: prepare
    hive:
      script: scripts/prepare.hql
      args: {{ds: "{{{{ ds }}}}", database: "{{{{ db.analytics }}}}"}}

  - id: compute
    spark:
      script: scripts/compute.py
      args: ["--ds", "{{{{ ds }}}}", "--output", "{{{{ lake.uri }}}}{name}/ds={{{{ ds }}}}/"]
    depends_on: [prepare]
"""

_EMR_HIVE = """\
-- Values arrive as Hive variables from the step's args: ${{ds}}, ${{database}}.
CREATE DATABASE IF NOT EXISTS ${{database}};
SELECT '${{ds}}' AS ds;
"""

_EMR_SPARK = '''\
"""Spark step of {name}: arguments come from the spec's `args`."""

import argparse

from pyspark.sql import SparkSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ds", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    spark = SparkSession.builder.appName("{name}").getOrCreate()
    spark.createDataFrame([(args.ds,)], ["ds"]).write.mode("overwrite").parquet(args.output)


if __name__ == "__main__":
    main()
'''

ENGINES = {
    # EMR's Hive and Spark steps are not SQL tests: only the Athena scaffold has one.
    "athena": {"sql/create_table.sql": _ATHENA_SQL, "tests/{name}.yaml": _ATHENA_TEST},
    "emr": {"scripts/prepare.hql": _EMR_HIVE, "scripts/compute.py": _EMR_SPARK},
}
SPECS = {"athena": _ATHENA_SPEC, "emr": _EMR_SPEC}


def scaffold_pipeline(pipelines_dir: Path, name: str, engine: str) -> list[Path]:
    """Write a new pipeline folder; refuse a bad name, an unknown engine or an existing folder."""
    if not PIPELINE_NAME.match(name):
        raise ConfigError(
            f"pipeline name '{name}': expected lower-case letters, digits and '_', starting with "
            "a letter (it becomes the DAG id and the file name)"
        )
    if engine not in SPECS:
        raise ConfigError(f"--engine '{engine}': allowed: {', '.join(SPECS)}")
    folder = pipelines_dir / name
    if folder.exists():
        raise ConfigError(f"{folder}: already exists; choose another name or edit that pipeline")
    files = {f"{name}.yaml": SPECS[engine], **ENGINES[engine]}
    written = []
    for relative, template in files.items():
        path = folder / relative.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name), encoding="utf-8")
        written.append(path)
    return written
