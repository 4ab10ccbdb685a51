SELECT count(*) AS n
FROM {{ db.movielens }}.ratings
WHERE rated_at > {{ ts_nodahs }}
