-- What a client (anon, authenticated: a Supabase client with its JWT) may reach, closed down to
-- what the product needs. Found by a red-team run (issue #16); each rule has a test in
-- tests/security/ that uses the door the attack used.

-- 1. Functions. PostgreSQL grants EXECUTE on every new function to PUBLIC, and a SECURITY
--    DEFINER one runs as its owner: lora_emit let `anon` forge "completed" events into any
--    LoRA's stream. Nothing is callable by clients unless it is part of their surface, and a
--    function in that surface says so in its comment ("client surface: why");
--    tests/security/test_sql_surface.py fails on any other.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC, anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- auth.uid() is Supabase's own on a real project (owned by its auth admin, left alone there);
-- on plain PostgreSQL it is our stand-in (0001) and gets the same treatment.
DO $$
BEGIN
  IF pg_get_userbyid((SELECT proowner FROM pg_proc WHERE oid = 'auth.uid()'::regprocedure)) = current_user THEN
    REVOKE EXECUTE ON FUNCTION auth.uid() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated;
    COMMENT ON FUNCTION auth.uid() IS
      'client surface: the caller''s user id from request.jwt.claims; the RLS policies call it';
  END IF;
END $$;
GRANT EXECUTE ON FUNCTION public.loraflow_ensure_user() TO authenticated;
COMMENT ON FUNCTION public.loraflow_ensure_user() IS
  'client surface: creates the caller''s own auth.users stand-in row (plain PostgreSQL only); '
  'touches no one else''s';
-- loraflow_month_spend(): the platform's spend is the service's business, not every user's
-- (it was granted to authenticated). The service reads it as the table owner.

-- 2. What a client INSERT may choose. The worker trusts training_params, the reference images,
--    the base model and the job a LoRA belongs to; a client chose them all. A client now names
--    only whose LoRA (its own, by the RLS policy), its name and its description; the service
--    records the rest (the API validates the parameters first, the workflow again).
REVOKE INSERT ON lora_models FROM anon, authenticated;
GRANT INSERT (user_id, name, description) ON lora_models TO authenticated;

-- 3. The limits the API enforces hold in the database too (a Supabase client bypasses the API).
--    NOT VALID: they bind every new or changed row; rows from before are left as they were.
ALTER TABLE lora_models DROP CONSTRAINT IF EXISTS lora_models_name_shape;
ALTER TABLE lora_models ADD CONSTRAINT lora_models_name_shape CHECK (
  char_length(name) BETWEEN 1 AND 255
  AND name = btrim(name, E' \t\r\n')
  -- at least one visible character: not only spaces, zero-width or filler characters
  AND name ~ '[^[:space:]\u00a0\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u2800\u3000\u3164\ufeff\uffa0]'
  AND name !~ '[[:cntrl:]]'
) NOT VALID;
ALTER TABLE lora_models DROP CONSTRAINT IF EXISTS lora_models_description_length;
ALTER TABLE lora_models ADD CONSTRAINT lora_models_description_length CHECK (
  description IS NULL OR char_length(description) <= 2000
) NOT VALID;
