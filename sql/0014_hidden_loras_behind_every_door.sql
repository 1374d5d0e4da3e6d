-- A hidden LoRA (moderation: sql/0011, sql/0013) is out of the library for everyone but its
-- creator and the admins, through every door a client has, not only lora_models' RLS:
--
-- * lora_library is a view with its owner's rights (it joins auth.users, which clients cannot
--   read), so lora_models' RLS did not apply through it: any user could list hidden LoRAs, their
--   reasons and storage URLs with `SELECT * FROM lora_library WHERE hidden_at IS NOT NULL`.
--   The view now applies the same rule itself for the client roles; the service (the table's
--   owner, not a client role) still sees every row.
-- * lora_events' policy let every user read every LoRA's events (outcomes, storage URLs): a
--   LoRA's events are now readable where the LoRA is (the subquery runs under lora_models' RLS).
DROP VIEW IF EXISTS lora_library;
CREATE VIEW lora_library AS
  SELECT m.*, u.email AS created_by_email
    FROM lora_models m
    LEFT JOIN auth.users u ON u.id = m.user_id
   WHERE m.hidden_at IS NULL
      OR current_user NOT IN ('anon', 'authenticated')
      OR m.user_id = auth.uid()
      OR loraflow_is_admin();
REVOKE ALL ON lora_library FROM PUBLIC, anon, authenticated;
GRANT SELECT ON lora_library TO authenticated;

DROP POLICY IF EXISTS "All users can view LoRA events" ON lora_events;
DROP POLICY IF EXISTS "Users view the events of LoRAs they can see" ON lora_events;
CREATE POLICY "Users view the events of LoRAs they can see" ON lora_events FOR SELECT
  USING (EXISTS (SELECT 1 FROM lora_models m WHERE m.id = lora_events.lora_model_id));

-- On Supabase every table, sequence and function the migrating role creates in `public` is
-- granted in full to anon and authenticated unless revoked (its default privileges); these
-- were revoked from PUBLIC only, so there a client (anon included) could TRUNCATE the event
-- log and the usage history (TRUNCATE ignores RLS), `setval` the events' sequence (breaking
-- every status trigger), read the budget alerts, and rewrite loraflow_migrations (blocking the
-- next deploy). The suite's database now starts with those default privileges
-- (tests/helpers/sql_roles.py), and tests/security/test_sql_surface.py lists every privilege a
-- client holds on a table, view or sequence.
REVOKE ALL ON loraflow_migrations, lora_events, lora_usages, budget_alerts FROM PUBLIC, anon, authenticated;
REVOKE ALL ON SEQUENCE lora_events_id_seq FROM PUBLIC, anon, authenticated;
ALTER TABLE loraflow_migrations ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON lora_events TO authenticated;
