CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.analytics }}.anime_raw (title STRING)
STORED AS PARQUET
LOCATION '{{ lake.uri }}analytics/anime_raw/'
