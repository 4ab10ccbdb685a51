-- One row per successful run of the checks; IF NOT EXISTS makes re-runs harmless.
CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.ops }}.quality_runs (
  pipeline STRING,
  run_id STRING,
  checked_at TIMESTAMP
)
STORED AS PARQUET
LOCATION '{{ lake.uri }}ops/quality_runs/'
