SELECT movieid
FORM {{ db.movielens }}.movies
