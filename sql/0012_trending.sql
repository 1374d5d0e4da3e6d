-- Trending (issue #13): uses in the last 30 days. A use counts at once (the clip planner adds 1
-- with usage_count, loraflow.domain.clips); uses that age out of the window are taken off by
-- lora_trending_refresh(), run hourly by a Temporal Schedule (RefreshTrendingWorkflow), so
-- `uses_30d` is exact to the hour. The column (not a window computed per request) is what lets
-- an index serve `sort=trending` at any library size.
ALTER TABLE lora_models
  ADD COLUMN IF NOT EXISTS uses_30d INTEGER NOT NULL DEFAULT 0 CHECK (uses_30d >= 0);
CREATE INDEX IF NOT EXISTS idx_lora_models_trending
  ON lora_models(uses_30d DESC, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_lora_usages_lora_recent ON lora_usages(lora_model_id, created_at);

-- Recount every LoRA that may have uses aging out; the number of LoRAs it changed.
CREATE OR REPLACE FUNCTION lora_trending_refresh() RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  changed INTEGER;
BEGIN
  WITH recount AS (
    SELECT m.id, (SELECT count(*) FROM lora_usages u
                   WHERE u.lora_model_id = m.id AND u.created_at > now() - interval '30 days') AS n
      FROM lora_models m
     WHERE m.uses_30d > 0
  )
  UPDATE lora_models m SET uses_30d = r.n
    FROM recount r
   WHERE m.id = r.id AND m.uses_30d <> r.n;
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION lora_trending_refresh() FROM PUBLIC, anon, authenticated;

-- Existing uses (a database migrated from before this file).
UPDATE lora_models m SET uses_30d = u.n
  FROM (SELECT lora_model_id, count(*) AS n FROM lora_usages
         WHERE created_at > now() - interval '30 days' GROUP BY lora_model_id) u
 WHERE m.id = u.lora_model_id AND m.uses_30d <> u.n;

DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;
