-- The video-job side: LoRAs a job asked for, per-clip usage counted once, and live events.

CREATE INDEX IF NOT EXISTS idx_lora_models_job ON lora_models(triggered_by_job_id)
  WHERE triggered_by_job_id IS NOT NULL;

-- One row per (LoRA, clip) that used it. A retried apply activity inserts the same pair again,
-- the insert does nothing, and usage_count only moves when it took: exactly once per clip.
CREATE TABLE IF NOT EXISTS lora_usages (
  lora_model_id UUID NOT NULL REFERENCES lora_models(id),
  clip_id       TEXT NOT NULL CHECK (length(clip_id) BETWEEN 1 AND 255),
  job_id        UUID,
  mode          TEXT NOT NULL CHECK (mode IN ('direct', 'preprocess')),
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (lora_model_id, clip_id)
);
ALTER TABLE lora_usages ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON lora_usages FROM PUBLIC;

-- Live events, for GET /lora-models/{id}/events (server-sent events). Each is stored (so a
-- reconnecting client resumes after its Last-Event-ID) and pushed with NOTIFY (so the API
-- holds one LISTEN connection, not a poll per client). Written only by triggers.
CREATE TABLE IF NOT EXISTS lora_events (
  id            BIGSERIAL PRIMARY KEY,
  lora_model_id UUID NOT NULL,
  event         TEXT NOT NULL CHECK (event IN ('status', 'progress', 'outcome')),
  data          JSONB NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_lora_events_lora ON lora_events(lora_model_id, id);
CREATE INDEX IF NOT EXISTS idx_lora_events_created ON lora_events(created_at);
ALTER TABLE lora_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "All users can view LoRA events" ON lora_events;
CREATE POLICY "All users can view LoRA events" ON lora_events FOR SELECT USING (true);
REVOKE ALL ON lora_events FROM PUBLIC;
GRANT SELECT ON lora_events TO authenticated;

CREATE OR REPLACE FUNCTION lora_emit(lora UUID, kind TEXT, payload JSONB) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  new_id BIGINT;
BEGIN
  INSERT INTO lora_events (lora_model_id, event, data) VALUES (lora, kind, payload)
    RETURNING id INTO new_id;
  -- Delivered at commit, so a listener never sees an event whose row it cannot read.
  PERFORM pg_notify('lora_events', json_build_object(
    'id', new_id, 'lora_id', lora, 'event', kind, 'data', payload)::text);
END
$$;

CREATE OR REPLACE FUNCTION lora_models_emit() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.training_status IS NOT DISTINCT FROM OLD.training_status THEN
    RETURN NULL;
  END IF;
  IF NEW.training_status IN ('completed', 'failed') THEN
    PERFORM lora_emit(NEW.id, 'outcome', jsonb_build_object(
      'status', NEW.training_status, 'error_message', NEW.error_message,
      'validation_passed', NEW.validation_passed, 'storage_url', NEW.storage_url,
      'sha256', NEW.sha256, 'file_size', NEW.file_size, 'training_cost', NEW.training_cost));
  ELSE
    PERFORM lora_emit(NEW.id, 'status', jsonb_build_object('status', NEW.training_status));
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS lora_models_emit ON lora_models;
CREATE TRIGGER lora_models_emit AFTER INSERT OR UPDATE OF training_status ON lora_models
  FOR EACH ROW EXECUTE FUNCTION lora_models_emit();

CREATE OR REPLACE FUNCTION lora_training_jobs_emit() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- At most one event per percent, or when the ETA moves by 5 s or more: a stream, not a flood.
  IF TG_OP = 'UPDATE'
     AND NEW.training_progress IS NOT DISTINCT FROM OLD.training_progress
     AND abs(coalesce(NEW.estimated_remaining, 0) - coalesce(OLD.estimated_remaining, 0)) < 5 THEN
    RETURN NULL;
  END IF;
  IF NEW.lora_model_id IS NOT NULL THEN
    PERFORM lora_emit(NEW.lora_model_id, 'progress', jsonb_build_object(
      'progress', NEW.training_progress, 'estimated_remaining', NEW.estimated_remaining));
  END IF;
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS lora_training_jobs_emit ON lora_training_jobs;
CREATE TRIGGER lora_training_jobs_emit AFTER INSERT OR UPDATE ON lora_training_jobs
  FOR EACH ROW EXECUTE FUNCTION lora_training_jobs_emit();
