CREATE TABLE {{ db.analytics }}.top_films
WITH (format = 'PARQUET', external_location = '{{ lake.uri }}')
AS
SELECT
  r.movieid,
  avg(r.rating) AS avg_rating
FROM {{ db.movielens }}.ratings AS r
GROUP BY r.movieid
