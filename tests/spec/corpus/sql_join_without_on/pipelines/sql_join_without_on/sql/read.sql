SELECT m.title, r.rating
FROM {{ db.movielens }}.movies AS m
JOIN {{ db.movielens }}.ratings AS r
WHERE r.rating > 4
