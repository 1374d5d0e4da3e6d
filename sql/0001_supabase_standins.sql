-- Supabase provides auth.users, auth.uid(), the anon/authenticated/service_role roles and the
-- platform's jobs table. On plain PostgreSQL (the embedded stack, tests) we create minimal
-- stand-ins with the same names and behaviour; on Supabase every statement here is a no-op.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;

-- The role we connect as must be able to SET ROLE to these (PostgREST's way of applying RLS).
-- A superuser can already; on Supabase the `postgres` role is a member of them.
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT authenticated, anon, service_role TO %I', current_user);
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'could not grant API roles to %; assuming the platform did', current_user;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;

DO $$
BEGIN
  IF to_regclass('auth.users') IS NULL THEN
    CREATE TABLE auth.users (
      id         UUID PRIMARY KEY,
      email      TEXT,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    COMMENT ON TABLE auth.users IS 'loraflow stand-in for Supabase Auth users';
  END IF;

  -- auth.uid() the way Supabase defines it: the `sub` claim of the request's JWT, which
  -- PostgREST (and our API) put in the `request.jwt.claims` setting.
  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS UUID
      LANGUAGE sql STABLE
      AS $f$
        SELECT nullif(
          coalesce(
            nullif(current_setting('request.jwt.claim.sub', true), ''),
            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
          ), ''
        )::uuid
      $f$;
  END IF;

  IF to_regclass('public.jobs') IS NULL THEN
    CREATE TABLE public.jobs (
      id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id    UUID REFERENCES auth.users(id) ON DELETE SET NULL,
      status     TEXT NOT NULL DEFAULT 'pending',
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    COMMENT ON TABLE public.jobs IS 'loraflow stand-in for the platform''s video jobs';
  END IF;
END
$$;

GRANT USAGE ON SCHEMA auth TO authenticated, anon, service_role;
GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated, anon, service_role;

-- On plain PostgreSQL nothing creates auth.users rows for us: the API calls this as the
-- caller, and it records the caller's own verified JWT identity (sub and email, from
-- request.jwt.claims). On Supabase the user already exists and the function does nothing.
DO $$
BEGIN
  IF obj_description('auth.users'::regclass, 'pg_class') = 'loraflow stand-in for Supabase Auth users' THEN
    CREATE OR REPLACE FUNCTION public.loraflow_ensure_user() RETURNS void
      LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
      AS $f$
        INSERT INTO auth.users (id, email)
        SELECT auth.uid(), nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
        WHERE auth.uid() IS NOT NULL
        ON CONFLICT (id) DO UPDATE SET email = coalesce(EXCLUDED.email, auth.users.email)
        WHERE auth.users.email IS DISTINCT FROM coalesce(EXCLUDED.email, auth.users.email)
      $f$;
  ELSE
    CREATE OR REPLACE FUNCTION public.loraflow_ensure_user() RETURNS void
      LANGUAGE sql AS $f$ SELECT $f$;
  END IF;
END
$$;
REVOKE ALL ON FUNCTION public.loraflow_ensure_user() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.loraflow_ensure_user() TO authenticated;
