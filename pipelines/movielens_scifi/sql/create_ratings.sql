-- MovieLens ratings.csv as landed: userId,movieId,rating,timestamp with a header line.
CREATE EXTERNAL TABLE IF NOT EXISTS {{ db.movielens }}.ratings (
  userid INT,
  movieid INT,
  rating DOUBLE,
  rated_at BIGINT
)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
STORED AS TEXTFILE
LOCATION '{{ lake.bucket_uri }}landing/movielens/ratings/'
TBLPROPERTIES ('skip.header.line.count' = '1')
