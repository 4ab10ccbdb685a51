-- One day of ratings, de-duplicated and range-checked, into a partitioned Parquet table.
-- Variables come from the task's args (hive -d name=value).
CREATE EXTERNAL TABLE IF NOT EXISTS ${target_db}.ratings_clean (
  userid INT,
  movieid INT,
  rating DOUBLE,
  rated_at TIMESTAMP
)
PARTITIONED BY (ds STRING)
STORED AS PARQUET
LOCATION '${target_location}';

INSERT OVERWRITE TABLE ${target_db}.ratings_clean PARTITION (ds = '${ds}')
SELECT DISTINCT userid, movieid, rating, CAST(from_unixtime(rated_at) AS TIMESTAMP)
FROM ${source_db}.ratings
WHERE rating BETWEEN 0.5 AND 5.0
  AND to_date(from_unixtime(rated_at)) = '${ds}';
