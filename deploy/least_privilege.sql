-- Least-privilege roles for coinmarket_assets, run by an administrator on the project's database:
--
--   psql -v ON_ERROR_STOP=1 -d coinmarket -f deploy/least_privilege.sql
--
-- coinmarket_migrator  owns schema public and everything in it, runs `coinmarket migrate`.
-- coinmarket_pipeline  reads and writes the data tables (SELECT, INSERT, UPDATE, DELETE), reads
--                      yoyo's migration history, creates temporary staging tables, and owns
--                      schema dagster, where Dagster creates and migrates its own tables.
--
-- Run it as a superuser (or as a role that is a member of both roles) on a database dedicated
-- to the project. It is idempotent: run it before the first `coinmarket migrate` and once more
-- after it (and after a `coinmarket restore`), because yoyo's bookkeeping tables are created by
-- the migrator and receive the data tables' default privileges until this script narrows them.
--
-- No passwords here: the roles are created with LOGIN and no password, so they cannot log in
-- over password authentication until the administrator sets one (ALTER ROLE ... PASSWORD).

BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coinmarket_migrator') THEN
        CREATE ROLE coinmarket_migrator LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coinmarket_pipeline') THEN
        CREATE ROLE coinmarket_pipeline LOGIN;
    END IF;
END
$$;

-- Only these two roles (and the database owner) may connect; other readers need a GRANT.
-- TEMPORARY: the IO manager stages rows in CREATE TEMP TABLE ... ON COMMIT DROP tables.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO coinmarket_migrator', current_database());
    EXECUTE format(
        'GRANT CONNECT, TEMPORARY ON DATABASE %I TO coinmarket_pipeline', current_database()
    );
END
$$;

-- The data schema. PostgreSQL 15+ no longer lets PUBLIC create in it; older versions did.
ALTER SCHEMA public OWNER TO coinmarket_migrator;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO coinmarket_pipeline;

-- Tables of a database migrated before this setup (say, by the administrator) change hands, so
-- that later migrations can alter them.
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'public' AND tableowner <> 'coinmarket_migrator'
    LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO coinmarket_migrator', name);
    END LOOP;
    FOR name IN
        SELECT viewname FROM pg_views
        WHERE schemaname = 'public' AND viewowner <> 'coinmarket_migrator'
    LOOP
        EXECUTE format('ALTER VIEW public.%I OWNER TO coinmarket_migrator', name);
    END LOOP;
END
$$;

-- Tables that later migrations create get the same rights as today's data tables.
ALTER DEFAULT PRIVILEGES FOR ROLE coinmarket_migrator IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO coinmarket_pipeline;
-- An identity or serial column added later must not break the pipeline's inserts.
ALTER DEFAULT PRIVILEGES FOR ROLE coinmarket_migrator IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO coinmarket_pipeline;

-- Existing tables: DML on data tables; of yoyo's bookkeeping, only what the start-up check
-- (pending migrations) reads. The lock and the log are the migrator's alone.
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
    LOOP
        EXECUTE format('REVOKE ALL ON public.%I FROM coinmarket_pipeline', name);
        IF name IN ('_yoyo_migration', '_yoyo_version') THEN
            EXECUTE format('GRANT SELECT ON public.%I TO coinmarket_pipeline', name);
        ELSIF name NOT IN ('_yoyo_log', 'yoyo_lock') THEN
            EXECUTE format(
                'GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO coinmarket_pipeline', name
            );
        END IF;
    END LOOP;
    -- The read-side views are for reading only.
    FOR name IN SELECT viewname FROM pg_views WHERE schemaname = 'public'
    LOOP
        EXECUTE format('REVOKE ALL ON public.%I FROM coinmarket_pipeline', name);
        EXECUTE format('GRANT SELECT ON public.%I TO coinmarket_pipeline', name);
    END LOOP;
END
$$;

-- Dagster's run, event and schedule storage: the pipeline creates and migrates its tables here.
CREATE SCHEMA IF NOT EXISTS dagster AUTHORIZATION coinmarket_pipeline;
ALTER SCHEMA dagster OWNER TO coinmarket_pipeline;
REVOKE ALL ON SCHEMA dagster FROM PUBLIC;

DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'dagster' AND tableowner <> 'coinmarket_pipeline'
    LOOP
        EXECUTE format('ALTER TABLE dagster.%I OWNER TO coinmarket_pipeline', name);
    END LOOP;
END
$$;

COMMIT;
