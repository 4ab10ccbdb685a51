-- MovieLens movies.csv as landed: movieId,title,genres with a header line.
CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.movielens }}.movies (
  movieid INT,
  title STRING,
  genres STRING
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"')
STORED AS TEXTFILE
LOCATION '{{ lake.bucket_uri }}landing/movielens/movies/'
TBLPROPERTIES ('skip.header.line.count' = '1')
