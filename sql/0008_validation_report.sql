-- Validation's full report (issue #12): the judge, every checkpoint's verdict and likeness, the
-- checkpoint kept, and each prompt's images with their scores and the base model's control.
-- Written by the worker only (clients have no UPDATE on it: 0002 grants UPDATE on name and
-- description alone); readable by everyone, like the rest of a public LoRA.
ALTER TABLE lora_models ADD COLUMN IF NOT EXISTS validation_report JSONB;

-- lora_library's `m.*` was expanded when the view was made: make it again to show the column.
DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id;
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;
