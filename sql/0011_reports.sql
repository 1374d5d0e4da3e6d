-- Reports (issue #13): a user reports a LoRA for a reason from a fixed list, with an optional
-- note. One open report per user per LoRA; at most 10 reports per user per hour. A LoRA with
-- open reports from `report_hide_threshold` distinct users (loraflow_settings, default 3) is
-- hidden pending review: it leaves the public list and search; its creator still sees it, with
-- the reason. Hiding never deletes.
CREATE TABLE IF NOT EXISTS lora_reports (
  id BIGSERIAL PRIMARY KEY,
  lora_model_id UUID NOT NULL REFERENCES lora_models(id) ON DELETE CASCADE,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  reason TEXT NOT NULL CHECK (reason IN
    ('sexual', 'minor', 'violence', 'hate', 'impersonation', 'copyright', 'spam', 'other')),
  note TEXT CHECK (note IS NULL OR char_length(note) <= 1000),
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_lora_reports_one_open
  ON lora_reports(lora_model_id, user_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS idx_lora_reports_user_recent ON lora_reports(user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_lora_reports_open ON lora_reports(created_at) WHERE status = 'open';

INSERT INTO loraflow_settings (key, value) VALUES ('report_hide_threshold', '3') ON CONFLICT (key) DO NOTHING;

ALTER TABLE lora_models
  ADD COLUMN IF NOT EXISTS hidden_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS hidden_reason TEXT;

CREATE OR REPLACE FUNCTION lora_reports_check() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- Per user, not per LoRA: the user's row in auth.users serialises their concurrent reports.
  PERFORM 1 FROM auth.users WHERE id = NEW.user_id FOR UPDATE;
  IF (SELECT count(*) FROM lora_reports
       WHERE user_id = NEW.user_id AND created_at > now() - interval '1 hour') >= 10 THEN
    RAISE EXCEPTION 'at most 10 reports an hour; try again later'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS lora_reports_check ON lora_reports;
CREATE TRIGGER lora_reports_check BEFORE INSERT ON lora_reports
  FOR EACH ROW EXECUTE FUNCTION lora_reports_check();

CREATE OR REPLACE FUNCTION lora_reports_hide() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  threshold INT;
BEGIN
  SELECT coalesce((value #>> '{}')::int, 3) INTO threshold FROM loraflow_settings
   WHERE key = 'report_hide_threshold';
  -- Under the LoRA's row lock: concurrent reports see each other's counts.
  PERFORM 1 FROM lora_models WHERE id = NEW.lora_model_id FOR UPDATE;
  IF (SELECT count(DISTINCT user_id) FROM lora_reports
       WHERE lora_model_id = NEW.lora_model_id AND status = 'open') >= coalesce(threshold, 3) THEN
    UPDATE lora_models SET hidden_at = now(), hidden_reason = 'reported by several users; pending review'
     WHERE id = NEW.lora_model_id AND hidden_at IS NULL;
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS lora_reports_hide ON lora_reports;
CREATE TRIGGER lora_reports_hide AFTER INSERT ON lora_reports
  FOR EACH ROW EXECUTE FUNCTION lora_reports_hide();
REVOKE ALL ON FUNCTION lora_reports_check(), lora_reports_hide() FROM PUBLIC, anon, authenticated;

-- The library's counters count what the public list shows: visible LoRAs only.
CREATE OR REPLACE FUNCTION lora_models_count() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.hidden_at IS NULL THEN
    UPDATE lora_library_counts SET n = n - 1 WHERE training_status = OLD.training_status;
  END IF;
  IF NEW.hidden_at IS NULL THEN
    UPDATE lora_library_counts SET n = n + 1 WHERE training_status = NEW.training_status;
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS lora_models_count ON lora_models;
CREATE TRIGGER lora_models_count AFTER INSERT OR UPDATE OF training_status, hidden_at ON lora_models
  FOR EACH ROW EXECUTE FUNCTION lora_models_count();
CREATE OR REPLACE FUNCTION loraflow_recount_library() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE lora_library_counts IN EXCLUSIVE MODE;
  DELETE FROM lora_library_counts;
  INSERT INTO lora_library_counts (training_status, n)
  SELECT s, (SELECT count(*) FROM lora_models WHERE training_status = s AND hidden_at IS NULL)
    FROM unnest(ARRAY['pending', 'training', 'validating', 'completed', 'failed']) s;
END
$$;
REVOKE ALL ON FUNCTION loraflow_recount_library() FROM PUBLIC, anon, authenticated;

-- A hidden LoRA is visible to its creator only (direct clients: RLS; the API filters the same).
DROP POLICY IF EXISTS "All users can view all LoRAs" ON lora_models;
DROP POLICY IF EXISTS "Users view visible LoRAs and their own" ON lora_models;
CREATE POLICY "Users view visible LoRAs and their own" ON lora_models FOR SELECT
  USING (hidden_at IS NULL OR auth.uid() = user_id);

ALTER TABLE lora_reports ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "Users report as themselves" ON lora_reports;
CREATE POLICY "Users report as themselves" ON lora_reports FOR INSERT WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users see their own reports" ON lora_reports;
CREATE POLICY "Users see their own reports" ON lora_reports FOR SELECT USING (auth.uid() = user_id);
REVOKE ALL ON lora_reports FROM PUBLIC, anon, authenticated;
REVOKE ALL ON SEQUENCE lora_reports_id_seq FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_reports TO authenticated;
GRANT INSERT (lora_model_id, user_id, reason, note) ON lora_reports TO authenticated;
GRANT USAGE ON SEQUENCE lora_reports_id_seq TO authenticated;

DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;
