-- The LoRA library: the spec's tables (PRD part 1, "Database Schema"), with the changes
-- listed in the README's "Database" section and explained inline here.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Settings the database itself enforces (the monthly limit lives here, not only in the API,
-- so that no path around the API can exceed it). `loraflow migrate` writes LORAFLOW_MONTHLY_LIMIT.
CREATE TABLE IF NOT EXISTS loraflow_settings (
  key   TEXT PRIMARY KEY,
  value JSONB NOT NULL
);
INSERT INTO loraflow_settings (key, value) VALUES ('monthly_limit', '5')
ON CONFLICT (key) DO NOTHING;

CREATE TABLE IF NOT EXISTS lora_models (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Spec: ON DELETE CASCADE. LoRAs are never deleted, so a deleted user's LoRAs stay in the
  -- library with user_id set to NULL (shown as created by a deleted user).
  user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
  name VARCHAR(255) NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 255),
  usage_count INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
  description TEXT,
  -- Spec: NOT NULL. A pending LoRA has no file yet; a completed one must have all three.
  storage_path TEXT,
  storage_url TEXT,
  file_size BIGINT CHECK (file_size IS NULL OR file_size > 0),
  training_status VARCHAR(20) NOT NULL DEFAULT 'pending'
    CHECK (training_status IN ('pending', 'training', 'validating', 'completed', 'failed')),
  triggered_by_job_id UUID REFERENCES jobs(id) ON DELETE SET NULL,
  validation_image_urls TEXT[],
  validation_passed BOOLEAN NOT NULL DEFAULT FALSE,
  character_description TEXT,
  reference_image_urls TEXT[],
  training_cost DECIMAL(10,4) NOT NULL DEFAULT 0.0000,
  -- Additions for training and application.
  sha256 TEXT CHECK (sha256 IS NULL OR sha256 ~ '^[0-9a-f]{64}$'),
  base_model TEXT NOT NULL DEFAULT 'sdxl',
  trigger_word TEXT,
  training_params JSONB NOT NULL DEFAULT '{}'::jsonb,
  error_message TEXT,
  -- What search matches: name and description, lower-cased once at write time.
  search_text TEXT GENERATED ALWAYS AS (lower(name || ' ' || coalesce(description, ''))) STORED,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at TIMESTAMPTZ,
  CONSTRAINT lora_models_completed_has_file CHECK (
    training_status <> 'completed'
    OR (storage_path IS NOT NULL AND storage_url IS NOT NULL AND file_size IS NOT NULL)
  )
);

CREATE INDEX IF NOT EXISTS idx_lora_models_user ON lora_models(user_id);
CREATE INDEX IF NOT EXISTS idx_lora_models_status ON lora_models(training_status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_lora_models_user_status ON lora_models(user_id, training_status);
CREATE INDEX IF NOT EXISTS idx_lora_models_name ON lora_models(name, id);
CREATE INDEX IF NOT EXISTS idx_lora_models_usage ON lora_models(usage_count DESC, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_lora_models_recent ON lora_models(created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_lora_models_search_trgm ON lora_models USING gin (search_text gin_trgm_ops);
-- Spec: unique (user_id, name). A failed LoRA frees its name, so a user can retry a character
-- under the name they chose; the failed row stays in the archive.
CREATE UNIQUE INDEX IF NOT EXISTS idx_lora_models_user_name ON lora_models(user_id, name)
  WHERE training_status <> 'failed';

CREATE TABLE IF NOT EXISTS lora_training_jobs (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  lora_model_id UUID NOT NULL REFERENCES lora_models(id) ON DELETE CASCADE,
  user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
  runpod_pod_id TEXT,
  training_progress INTEGER NOT NULL DEFAULT 0 CHECK (training_progress BETWEEN 0 AND 100),
  estimated_remaining INTEGER CHECK (estimated_remaining IS NULL OR estimated_remaining >= 0),
  error_message TEXT,
  started_at TIMESTAMPTZ DEFAULT now(),
  completed_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_lora_training_jobs_lora ON lora_training_jobs(lora_model_id);
CREATE INDEX IF NOT EXISTS idx_lora_training_jobs_user ON lora_training_jobs(user_id);
CREATE INDEX IF NOT EXISTS idx_lora_training_jobs_pod ON lora_training_jobs(runpod_pod_id);

CREATE TABLE IF NOT EXISTS user_training_limits (
  user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  loras_created_this_month INTEGER NOT NULL DEFAULT 0,
  month_reset_date DATE NOT NULL DEFAULT CURRENT_DATE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_user_training_limits_reset ON user_training_limits(month_reset_date);

ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lora_model_id UUID REFERENCES lora_models(id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS idx_jobs_lora_model ON jobs(lora_model_id);

-- Training costs. The platform's job_costs table is used where it exists; otherwise ours.
CREATE TABLE IF NOT EXISTS job_costs (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id UUID REFERENCES jobs(id) ON DELETE SET NULL,
  lora_model_id UUID REFERENCES lora_models(id) ON DELETE SET NULL,
  service TEXT NOT NULL,
  cost DECIMAL(10,4) NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- Never delete: the database itself refuses, whatever the role or path.
CREATE OR REPLACE FUNCTION lora_models_refuse_delete() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'LoRAs are never deleted: lora_models is a permanent archive'
    USING ERRCODE = 'LF403', HINT = 'mark it failed instead';
END
$$;
DROP TRIGGER IF EXISTS lora_models_no_delete ON lora_models;
CREATE TRIGGER lora_models_no_delete BEFORE DELETE ON lora_models
  FOR EACH ROW EXECUTE FUNCTION lora_models_refuse_delete();
DROP TRIGGER IF EXISTS lora_models_no_truncate ON lora_models;
CREATE TRIGGER lora_models_no_truncate BEFORE TRUNCATE ON lora_models
  FOR EACH STATEMENT EXECUTE FUNCTION lora_models_refuse_delete();

-- updated_at follows every change.
CREATE OR REPLACE FUNCTION loraflow_touch_updated_at() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS lora_models_updated_at ON lora_models;
CREATE TRIGGER lora_models_updated_at BEFORE UPDATE ON lora_models
  FOR EACH ROW EXECUTE FUNCTION loraflow_touch_updated_at();

-- The per-user monthly limit, enforced at insert under a per-user advisory lock so that
-- concurrent creates serialise: the count a transaction sees includes every row committed
-- by the ones before it. Counts pending, training, validating and completed (not failed)
-- LoRAs created this calendar month (UTC). SECURITY DEFINER so that it can maintain
-- user_training_limits, which users cannot write.
CREATE OR REPLACE FUNCTION lora_models_enforce_monthly_limit() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  month_start TIMESTAMPTZ := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  max_per_month INTEGER;
  used INTEGER;
BEGIN
  IF NEW.user_id IS NULL THEN
    RETURN NEW;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('loraflow:monthly-limit:' || NEW.user_id::text, 0));
  SELECT (value #>> '{}')::int INTO max_per_month FROM loraflow_settings WHERE key = 'monthly_limit';
  max_per_month := coalesce(max_per_month, 5);
  SELECT count(*) INTO used FROM lora_models
   WHERE user_id = NEW.user_id AND created_at >= month_start AND training_status <> 'failed';
  IF used >= max_per_month THEN
    RAISE EXCEPTION 'monthly limit reached: % LoRAs per month', max_per_month
      USING ERRCODE = 'LF429', DETAIL = format('%s of %s used this month', used, max_per_month);
  END IF;
  INSERT INTO user_training_limits AS l (user_id, loras_created_this_month, month_reset_date)
  VALUES (NEW.user_id, used + 1, month_start::date)
  ON CONFLICT (user_id) DO UPDATE
    SET loras_created_this_month = EXCLUDED.loras_created_this_month,
        month_reset_date = EXCLUDED.month_reset_date,
        updated_at = now();
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS lora_models_monthly_limit ON lora_models;
CREATE TRIGGER lora_models_monthly_limit BEFORE INSERT ON lora_models
  FOR EACH ROW EXECUTE FUNCTION lora_models_enforce_monthly_limit();

-- ---------------------------------------------------------------------------------------
-- The library as the API lists it: each LoRA with its creator's e-mail. Owned by the
-- migrating role, so it can read auth.users (which `authenticated` cannot on Supabase);
-- it exposes nothing the public-library policy does not already allow, plus the e-mail
-- the spec's selector displays ("Cyberpunk Girl (by user@example.com)").
CREATE OR REPLACE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;

-- ---------------------------------------------------------------------------------------
-- Row-level security (spec) and privileges. Users read everything; they insert rows for
-- themselves and may edit the name and description of their own LoRAs. Everything else
-- (status, files, cost) is written by the worker, which connects with its own role.
ALTER TABLE lora_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE lora_training_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_training_limits ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS "All users can view all LoRAs" ON lora_models;
CREATE POLICY "All users can view all LoRAs" ON lora_models FOR SELECT USING (true);
DROP POLICY IF EXISTS "Users can insert own LoRAs" ON lora_models;
CREATE POLICY "Users can insert own LoRAs" ON lora_models FOR INSERT
  WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can update own LoRAs" ON lora_models;
CREATE POLICY "Users can update own LoRAs" ON lora_models FOR UPDATE
  USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id);

DROP POLICY IF EXISTS "All users can view training jobs" ON lora_training_jobs;
CREATE POLICY "All users can view training jobs" ON lora_training_jobs FOR SELECT USING (true);
DROP POLICY IF EXISTS "Users can view own limits" ON user_training_limits;
CREATE POLICY "Users can view own limits" ON user_training_limits FOR SELECT
  USING (auth.uid() = user_id);

-- Supabase grants ALL on new public tables to anon and authenticated by default: take it
-- back and grant exactly what the policies above are for.
REVOKE ALL ON lora_models, lora_training_jobs, user_training_limits, lora_library, job_costs,
  loraflow_settings FROM anon, authenticated;
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT SELECT ON lora_models, lora_library, lora_training_jobs, user_training_limits TO authenticated;
GRANT INSERT (user_id, name, description, character_description, triggered_by_job_id,
              reference_image_urls, base_model, trigger_word, training_params)
  ON lora_models TO authenticated;
GRANT UPDATE (name, description) ON lora_models TO authenticated;
