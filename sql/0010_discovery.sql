-- Discovery filters (issue #13): each has an index that serves it with the list's order.
-- creator: a user's LoRAs, newest first.
CREATE INDEX IF NOT EXISTS idx_lora_models_user_recent ON lora_models(user_id, created_at DESC, id DESC);
-- base_model: one family, newest first.
CREATE INDEX IF NOT EXISTS idx_lora_models_base_model ON lora_models(base_model, created_at DESC, id DESC);
-- min_rating: the plain mean of the stars, null before the first vote.
ALTER TABLE lora_models
  ADD COLUMN IF NOT EXISTS rating_mean NUMERIC(5, 4)
    GENERATED ALWAYS AS (CASE WHEN rating_count > 0 THEN round(rating_sum::numeric / rating_count, 4) END) STORED;
CREATE INDEX IF NOT EXISTS idx_lora_models_rating_mean ON lora_models(rating_mean DESC, created_at DESC, id DESC)
  WHERE rating_mean IS NOT NULL;
-- created_after / created_before are ranges on idx_lora_models_recent (created_at DESC, id DESC).

DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;
