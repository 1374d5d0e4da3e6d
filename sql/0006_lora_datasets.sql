-- A LoRA's dataset, apart from its training parameters: which images it trains on (in order),
-- when the dataset was closed (its training started: later uploads are refused), and for a
-- video job's LoRA which slot of the job it fills and which character it is of. Until now this
-- lived in lora_models.training_params, which now holds only the user's training parameters.
--
-- Written only by the service, through loraflow/db/datasets.py; clients can neither read nor
-- write it (what a client may write, an attacker chooses, and the worker trusts this table).
-- The job itself stays lora_models.triggered_by_job_id (the spec's column): a job's LoRA is the
-- one with that job, the slot recorded here, and the job's user.

CREATE TABLE IF NOT EXISTS lora_datasets (
  lora_model_id UUID PRIMARY KEY REFERENCES lora_models(id),
  -- Storage keys of the images, in the order they came (uploads, then a job's generated ones).
  image_keys    TEXT[] NOT NULL DEFAULT '{}',
  -- Set once: when the dataset closed and its training started.
  started_at    TIMESTAMPTZ,
  -- A video job's LoRA: "primary" (the one linked as jobs.lora_model_id) or a character id.
  job_slot      TEXT CHECK (job_slot IS NULL OR length(job_slot) BETWEEN 1 AND 255),
  -- The character of the job's references this LoRA was trained for.
  character_id  TEXT CHECK (character_id IS NULL OR length(character_id) BETWEEN 1 AND 255),
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_lora_datasets_slot ON lora_datasets(job_slot) WHERE job_slot IS NOT NULL;

DROP TRIGGER IF EXISTS lora_datasets_updated_at ON lora_datasets;
CREATE TRIGGER lora_datasets_updated_at BEFORE UPDATE ON lora_datasets
  FOR EACH ROW EXECUTE FUNCTION loraflow_touch_updated_at();

ALTER TABLE lora_datasets ENABLE ROW LEVEL SECURITY;
-- No policy: under RLS, anon and authenticated see no row even if a grant slipped in.
REVOKE ALL ON lora_datasets FROM PUBLIC, anon, authenticated;

-- Move the state out of training_params. Only keys of the LoRA's own images are carried over
-- (training_params was client-writable, so a planted key pointing elsewhere is dropped).
INSERT INTO lora_datasets (lora_model_id, image_keys, started_at, job_slot, character_id)
SELECT m.id,
       coalesce(ARRAY(
         SELECT k.key FROM jsonb_array_elements_text(
                  CASE WHEN jsonb_typeof(m.training_params->'image_keys') = 'array'
                       THEN m.training_params->'image_keys' ELSE '[]'::jsonb END
                ) WITH ORDINALITY AS k(key, n)
          WHERE k.key LIKE 'lora-training-images/%/' || m.id::text || '/%'
          ORDER BY k.n), '{}'),
       CASE WHEN m.training_params->'started' = 'true'::jsonb THEN m.updated_at END,
       nullif(left(m.training_params->>'job_slot', 255), ''),
       nullif(left(m.training_params->>'character_id', 255), '')
  FROM lora_models m
 WHERE m.training_params ?| ARRAY['image_keys', 'started', 'job_slot', 'character_id']
ON CONFLICT (lora_model_id) DO NOTHING;

UPDATE lora_models
   SET training_params = training_params - ARRAY['image_keys', 'started', 'job_slot', 'character_id']
 WHERE training_params ?| ARRAY['image_keys', 'started', 'job_slot', 'character_id'];
