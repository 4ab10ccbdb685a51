SELECT
  movieid,
  title,
FROM {{ db.movielens }}.movies
