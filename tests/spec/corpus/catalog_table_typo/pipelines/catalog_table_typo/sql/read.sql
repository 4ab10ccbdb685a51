SELECT title
FROM {{ db.analytics }}.anime_raws
