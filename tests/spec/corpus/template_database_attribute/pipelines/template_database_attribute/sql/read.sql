SELECT count(*) AS n
FROM {{ database.analytics }}.scifi
