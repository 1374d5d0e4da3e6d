-- Ratings (issue #13): one per user per LoRA, 1-5 stars, changeable and removable; only a
-- completed LoRA, never one's own. lora_models keeps the aggregate (count and sum of stars)
-- exact: a trigger adds each change under the LoRA row's lock, so concurrent votes on one LoRA
-- serialise there and none is lost. top_rated sorts by a damped mean (a Bayesian average with
-- 5 prior votes of 3 stars), so one 5-star vote does not top the library.
CREATE TABLE IF NOT EXISTS lora_ratings (
  lora_model_id UUID NOT NULL REFERENCES lora_models(id) ON DELETE CASCADE,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  stars SMALLINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (lora_model_id, user_id)
);
CREATE INDEX IF NOT EXISTS idx_lora_ratings_user ON lora_ratings(user_id);

ALTER TABLE lora_models
  ADD COLUMN IF NOT EXISTS rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
  ADD COLUMN IF NOT EXISTS rating_sum INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);
ALTER TABLE lora_models
  ADD COLUMN IF NOT EXISTS rating_score NUMERIC(5, 4)
    GENERATED ALWAYS AS (round((15 + rating_sum)::numeric / (5 + rating_count), 4)) STORED;
CREATE INDEX IF NOT EXISTS idx_lora_models_top_rated
  ON lora_models(rating_score DESC, created_at DESC, id DESC);

-- The rules a client's SQL cannot get around (the API checks them first, for its messages).
CREATE OR REPLACE FUNCTION lora_ratings_check() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  owner UUID;
  status TEXT;
BEGIN
  SELECT user_id, training_status INTO owner, status FROM lora_models WHERE id = NEW.lora_model_id;
  IF status IS DISTINCT FROM 'completed' THEN
    RAISE EXCEPTION 'only a completed LoRA can be rated' USING ERRCODE = 'check_violation';
  END IF;
  IF owner = NEW.user_id THEN
    RAISE EXCEPTION 'a LoRA cannot be rated by its creator' USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS lora_ratings_check ON lora_ratings;
CREATE TRIGGER lora_ratings_check BEFORE INSERT OR UPDATE ON lora_ratings
  FOR EACH ROW EXECUTE FUNCTION lora_ratings_check();

CREATE OR REPLACE FUNCTION lora_ratings_count() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE lora_models SET rating_count = rating_count - 1, rating_sum = rating_sum - OLD.stars
     WHERE id = OLD.lora_model_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE lora_models SET rating_count = rating_count + 1, rating_sum = rating_sum + NEW.stars
     WHERE id = NEW.lora_model_id;
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS lora_ratings_count ON lora_ratings;
CREATE TRIGGER lora_ratings_count AFTER INSERT OR UPDATE OR DELETE ON lora_ratings
  FOR EACH ROW EXECUTE FUNCTION lora_ratings_count();
REVOKE ALL ON FUNCTION lora_ratings_check(), lora_ratings_count() FROM PUBLIC, anon, authenticated;

ALTER TABLE lora_ratings ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "Ratings are public" ON lora_ratings;
CREATE POLICY "Ratings are public" ON lora_ratings FOR SELECT USING (true);
DROP POLICY IF EXISTS "Users rate as themselves" ON lora_ratings;
CREATE POLICY "Users rate as themselves" ON lora_ratings FOR INSERT WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users change their own rating" ON lora_ratings;
CREATE POLICY "Users change their own rating" ON lora_ratings FOR UPDATE
  USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users remove their own rating" ON lora_ratings;
CREATE POLICY "Users remove their own rating" ON lora_ratings FOR DELETE USING (auth.uid() = user_id);
REVOKE ALL ON lora_ratings FROM PUBLIC, anon, authenticated;
GRANT SELECT, DELETE ON lora_ratings TO authenticated;
GRANT INSERT (lora_model_id, user_id, stars) ON lora_ratings TO authenticated;
GRANT UPDATE (stars) ON lora_ratings TO authenticated;

-- lora_library's `m.*` was expanded when the view was made: make it again for the new columns.
DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;
