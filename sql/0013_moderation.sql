-- Review (issue #13): admins work the report queue and hide or restore LoRAs; every decision is
-- kept in lora_moderation_log, which nobody can rewrite. An admin is who Supabase says: the
-- JWT's `app_metadata.role` is 'admin' (app_metadata is set by the service, never by the user).

CREATE OR REPLACE FUNCTION loraflow_is_admin() RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claims', true), '')::jsonb #>> '{app_metadata,role}' = 'admin',
    false)
$$;
REVOKE ALL ON FUNCTION loraflow_is_admin() FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION loraflow_is_admin() TO authenticated;
COMMENT ON FUNCTION loraflow_is_admin() IS
  'client surface: whether the caller''s JWT names an admin; the RLS policies of the review tables use it';

-- The audit trail: append-only for everyone (the triggers refuse UPDATE, DELETE and TRUNCATE,
-- whoever asks; only lora_moderate writes it).
CREATE TABLE IF NOT EXISTS lora_moderation_log (
  id BIGSERIAL PRIMARY KEY,
  lora_model_id UUID NOT NULL REFERENCES lora_models(id),
  admin_id UUID NOT NULL,
  admin_email TEXT,
  action TEXT NOT NULL CHECK (action IN ('hide', 'restore')),
  reason TEXT NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_lora_moderation_log_lora ON lora_moderation_log(lora_model_id, id);

CREATE OR REPLACE FUNCTION lora_moderation_log_immutable() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'the moderation log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS lora_moderation_log_immutable ON lora_moderation_log;
CREATE TRIGGER lora_moderation_log_immutable BEFORE UPDATE OR DELETE ON lora_moderation_log
  FOR EACH ROW EXECUTE FUNCTION lora_moderation_log_immutable();
DROP TRIGGER IF EXISTS lora_moderation_log_no_truncate ON lora_moderation_log;
CREATE TRIGGER lora_moderation_log_no_truncate BEFORE TRUNCATE ON lora_moderation_log
  FOR EACH STATEMENT EXECUTE FUNCTION lora_moderation_log_immutable();
REVOKE ALL ON FUNCTION lora_moderation_log_immutable() FROM PUBLIC, anon, authenticated;

ALTER TABLE lora_moderation_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "Admins read the moderation log" ON lora_moderation_log;
CREATE POLICY "Admins read the moderation log" ON lora_moderation_log FOR SELECT
  USING (loraflow_is_admin());
REVOKE ALL ON lora_moderation_log FROM PUBLIC, anon, authenticated;
REVOKE ALL ON SEQUENCE lora_moderation_log_id_seq FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_moderation_log TO authenticated;

-- Which decision closed a report (the log entry's reports are those naming it).
ALTER TABLE lora_reports
  ADD COLUMN IF NOT EXISTS resolved_by BIGINT REFERENCES lora_moderation_log(id);
DROP POLICY IF EXISTS "Admins see every report" ON lora_reports;
CREATE POLICY "Admins see every report" ON lora_reports FOR SELECT USING (loraflow_is_admin());
-- Admins see hidden LoRAs (to review them).
DROP POLICY IF EXISTS "Admins view every LoRA" ON lora_models;
CREATE POLICY "Admins view every LoRA" ON lora_models FOR SELECT USING (loraflow_is_admin());

-- The one way a decision is made: checks the caller is an admin, changes the LoRA (hide: out of
-- the library with the reason; restore: back in), closes its open reports, and logs it, in one
-- transaction. Never deletes anything. Returns the log entry's id.
CREATE OR REPLACE FUNCTION lora_moderate(lora UUID, decision TEXT, why TEXT) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  entry BIGINT;
  claims JSONB := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
BEGIN
  IF NOT loraflow_is_admin() OR auth.uid() IS NULL THEN
    RAISE EXCEPTION 'only an admin can moderate' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF decision NOT IN ('hide', 'restore') THEN
    RAISE EXCEPTION 'decision must be hide or restore' USING ERRCODE = 'check_violation';
  END IF;
  PERFORM 1 FROM lora_models WHERE id = lora FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such LoRA' USING ERRCODE = 'no_data_found';
  END IF;
  INSERT INTO lora_moderation_log (lora_model_id, admin_id, admin_email, action, reason)
    VALUES (lora, auth.uid(), claims ->> 'email', decision, why)
    RETURNING id INTO entry;
  IF decision = 'hide' THEN
    UPDATE lora_models SET hidden_at = coalesce(hidden_at, now()), hidden_reason = why WHERE id = lora;
  ELSE
    UPDATE lora_models SET hidden_at = NULL, hidden_reason = NULL WHERE id = lora;
  END IF;
  UPDATE lora_reports SET status = 'resolved', resolved_by = entry
   WHERE lora_model_id = lora AND status = 'open';
  RETURN entry;
END
$$;
REVOKE ALL ON FUNCTION lora_moderate(UUID, TEXT, TEXT) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION lora_moderate(UUID, TEXT, TEXT) TO authenticated;
COMMENT ON FUNCTION lora_moderate(UUID, TEXT, TEXT) IS
  'client surface: an admin''s hide/restore decision (refuses non-admins), audited in lora_moderation_log';

-- The review queue's LoRAs without reports: hidden (by automatic screening) and not yet decided.
CREATE INDEX IF NOT EXISTS idx_lora_models_hidden ON lora_models(hidden_at) WHERE hidden_at IS NOT NULL;
