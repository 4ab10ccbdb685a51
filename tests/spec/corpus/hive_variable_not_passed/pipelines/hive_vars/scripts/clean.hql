-- one day of ratings
INSERT OVERWRITE TABLE ${target_db}.ratings_clean PARTITION (ds = '${ds}')
SELECT userid, movieid, rating
FROM ${source_db}.ratings
WHERE ds = '${ds}';
