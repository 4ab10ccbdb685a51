SELECT movieid, avg(ratng) AS avg_rating
FROM {{ db.movielens }}.ratings
GROUP BY movieid
