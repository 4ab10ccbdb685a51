-- credentials for the partner bucket
SELECT 'AKIAIOSFODNN7EXAMPLE' AS access_key_id
