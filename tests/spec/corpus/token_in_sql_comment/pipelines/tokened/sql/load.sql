SELECT 1 AS one
-- fetched with 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
