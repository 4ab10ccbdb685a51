-- Sci-fi films with their average rating. A CTAS cannot write into a non-empty folder: each
-- logical date has its own, and mwaa-elt clears it first (task create_scifi_clear), so a
-- re-run of the same date (Airflow "clear") works.
CREATE TABLE {{ db.analytics }}.scifi
WITH (
  format = 'PARQUET',
  external_location = '{{ lake.uri }}analytics/scifi/{{ ts_nodash }}/'
) AS
SELECT
  m.movieid,
  m.title,
  m.genres,
  count(r.rating) AS ratings,
  avg(r.rating) AS avg_rating
FROM {{ db.movielens }}.movies AS m
JOIN {{ db.movielens }}.ratings AS r ON r.movieid = m.movieid
WHERE m.genres LIKE '%Sci-Fi%'
GROUP BY m.movieid, m.title, m.genres
