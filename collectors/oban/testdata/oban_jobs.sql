-- oban_jobs as Oban's own Postgres migrations leave it at version 14, the
-- latest, with prefix "public": lib/oban/migrations/postgres/v01.ex … v14.ex
-- of Oban 2.23.0 (github.com/oban-bg/oban, commit 2939e313), their Ecto
-- DSL written out as SQL by hand (Elixir is not on this machine). Net
-- effect of the fourteen migrations:
--   v01 type and table; v02 worker/queue length checks; v03 attempted_by;
--   v05/v08/v09 the (state, queue, priority, scheduled_at, id) index;
--   v08 discarded_at, priority, tags; v09 meta, cancelled_at and state
--   'cancelled'; v10 defaults, attempt_range and positive_max_attempts,
--   GIN indexes on args and meta; v11 oban_peers; v12 drops the insert
--   trigger of v01/v08 (Oban ≥ 2.14 notifies from the application:
--   pg_notify('public.oban_insert', ...)) and relaxes priority to >= 0;
--   v13 (state, cancelled_at) and (state, discarded_at) indexes; v14 state
--   'suspended'. Oban records the version as the table's comment.
-- Ecto's :utc_datetime_usec is timestamp without time zone, in UTC.

CREATE TYPE public.oban_job_state AS ENUM (
  'available', 'suspended', 'scheduled', 'executing', 'retryable', 'completed', 'discarded', 'cancelled'
);

CREATE TABLE public.oban_jobs (
  id bigserial PRIMARY KEY,
  state public.oban_job_state NOT NULL DEFAULT 'available',
  queue text NOT NULL DEFAULT 'default',
  worker text NOT NULL,
  args jsonb NOT NULL DEFAULT '{}',
  errors jsonb[] NOT NULL DEFAULT ARRAY[]::jsonb[],
  attempt integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 20,
  inserted_at timestamp without time zone NOT NULL DEFAULT timezone('UTC', now()),
  scheduled_at timestamp without time zone NOT NULL DEFAULT timezone('UTC', now()),
  attempted_at timestamp without time zone,
  completed_at timestamp without time zone,
  attempted_by text[],
  discarded_at timestamp without time zone,
  priority integer NOT NULL DEFAULT 0,
  tags text[] DEFAULT ARRAY[]::text[],
  meta jsonb DEFAULT '{}',
  cancelled_at timestamp without time zone,
  CONSTRAINT worker_length CHECK (char_length(worker) > 0 AND char_length(worker) < 128),
  CONSTRAINT queue_length CHECK (char_length(queue) > 0 AND char_length(queue) < 128),
  CONSTRAINT positive_max_attempts CHECK (max_attempts > 0),
  CONSTRAINT attempt_range CHECK (attempt BETWEEN 0 AND max_attempts),
  CONSTRAINT non_negative_priority CHECK (priority >= 0) NOT VALID
);

CREATE INDEX oban_jobs_state_queue_priority_scheduled_at_id_index ON public.oban_jobs (state, queue, priority, scheduled_at, id);
CREATE INDEX oban_jobs_args_index ON public.oban_jobs USING gin (args);
CREATE INDEX oban_jobs_meta_index ON public.oban_jobs USING gin (meta);
CREATE INDEX oban_jobs_state_cancelled_at_index ON public.oban_jobs (state, cancelled_at);
CREATE INDEX oban_jobs_state_discarded_at_index ON public.oban_jobs (state, discarded_at);

CREATE TABLE public.oban_peers (
  name text PRIMARY KEY,
  node text NOT NULL,
  started_at timestamp without time zone NOT NULL,
  expires_at timestamp without time zone NOT NULL
);

COMMENT ON TABLE public.oban_jobs IS '14';
