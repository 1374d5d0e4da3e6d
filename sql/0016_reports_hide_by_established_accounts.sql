-- Automatic hiding by reports (sql/0011) counts only reporters whose account is at least
-- `report_hide_min_account_age` old (loraflow_settings, default one day; auth.users.created_at
-- is the sign-up time): three accounts made a minute ago could hide any LoRA until an admin
-- looked. Their reports still reach the admin's review queue; only the automatic hiding waits
-- for established reporters.
INSERT INTO loraflow_settings (key, value) VALUES ('report_hide_min_account_age', '"1 day"')
ON CONFLICT (key) DO NOTHING;

CREATE OR REPLACE FUNCTION lora_reports_hide() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  threshold INT;
  min_age INTERVAL;
BEGIN
  SELECT (value #>> '{}')::int INTO threshold FROM loraflow_settings
   WHERE key = 'report_hide_threshold';
  SELECT (value #>> '{}')::interval INTO min_age FROM loraflow_settings
   WHERE key = 'report_hide_min_account_age';
  -- Under the LoRA's row lock: concurrent reports see each other's counts.
  PERFORM 1 FROM lora_models WHERE id = NEW.lora_model_id FOR UPDATE;
  IF (SELECT count(DISTINCT r.user_id) FROM lora_reports r JOIN auth.users u ON u.id = r.user_id
       WHERE r.lora_model_id = NEW.lora_model_id AND r.status = 'open'
         AND u.created_at <= now() - coalesce(min_age, interval '1 day')) >= coalesce(threshold, 3) THEN
    UPDATE lora_models SET hidden_at = now(), hidden_reason = 'reported by several users; pending review'
     WHERE id = NEW.lora_model_id AND hidden_at IS NULL;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION lora_reports_hide() FROM PUBLIC, anon, authenticated;
