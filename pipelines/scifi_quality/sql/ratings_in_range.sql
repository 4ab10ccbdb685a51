-- Passes (returns true) when every average rating is on MovieLens's 0.5-5 star scale.
SELECT count(*) = 0
FROM {{ db.analytics }}.scifi
WHERE avg_rating < 0.5 OR avg_rating > 5.0
