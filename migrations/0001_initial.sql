-- Chatter schema, version 1. Ids are ULIDs (26 chars, time-ordered) as text.
-- Token counts are bigint; money is numeric(20,10) USD so sums are exact.
-- Works on PostgreSQL 15+ and PGlite.

CREATE TABLE users (
  id                    text PRIMARY KEY,
  email                 text NOT NULL,
  username              text NOT NULL,
  password_hash         text NOT NULL,
  full_name             text,
  bio                   text,
  avatar_url            text,
  phone_number          text,
  is_active             boolean NOT NULL DEFAULT true,
  is_verified           boolean NOT NULL DEFAULT false,
  is_superuser          boolean NOT NULL DEFAULT false,
  default_llm_provider  text,
  daily_message_limit   integer,
  monthly_message_limit integer,
  -- Budgets: null means unlimited. Checked by the run actor on every model response.
  token_budget          bigint CHECK (token_budget IS NULL OR token_budget >= 0),
  cost_budget_usd       numeric(20, 10) CHECK (cost_budget_usd IS NULL OR cost_budget_usd >= 0),
  total_tokens          bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
  total_cost            numeric(20, 10) NOT NULL DEFAULT 0 CHECK (total_cost >= 0),
  last_login_at         timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          text NOT NULL,
  -- Only a hash of the key is stored; the prefix lets a user recognise a key.
  key_hash      text NOT NULL UNIQUE,
  key_prefix    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE refresh_tokens (
  id            text PRIMARY KEY,
  user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash    text NOT NULL UNIQUE,
  expires_at    timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  replaced_by   text
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE conversations (
  id                         text PRIMARY KEY,
  user_id                    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title                      text NOT NULL,
  description                text,
  status                     text NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'archived', 'deleted')),
  profile_id                 text,
  llm_provider               text,
  llm_model                  text,
  system_prompt              text,
  temperature                double precision CHECK (temperature IS NULL OR (temperature >= 0 AND temperature <= 2)),
  max_tokens                 integer CHECK (max_tokens IS NULL OR max_tokens > 0),
  enable_retrieval           boolean NOT NULL DEFAULT false,
  context_window             integer NOT NULL DEFAULT 4096,
  memory_enabled             boolean NOT NULL DEFAULT true,
  memory_strategy            text,
  retrieval_limit            integer NOT NULL DEFAULT 5,
  retrieval_score_threshold  double precision NOT NULL DEFAULT 0.7,
  tags                       jsonb,
  extra_metadata             jsonb,
  workflow_config            jsonb,
  token_budget               bigint CHECK (token_budget IS NULL OR token_budget >= 0),
  cost_budget_usd            numeric(20, 10) CHECK (cost_budget_usd IS NULL OR cost_budget_usd >= 0),
  -- Denormalised totals, kept equal to the sums over messages in the same
  -- transaction that writes the messages (ARCHITECTURE invariant 3).
  message_count              integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
  total_tokens               bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
  total_cost                 numeric(20, 10) NOT NULL DEFAULT 0 CHECK (total_cost >= 0),
  last_message_at            timestamptz,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_user_idx ON conversations (user_id, updated_at DESC);

CREATE TABLE workflow_runs (
  id                 text PRIMARY KEY,
  user_id            text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  conversation_id    text REFERENCES conversations (id) ON DELETE CASCADE,
  workflow           text NOT NULL,
  status             text NOT NULL
                       CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled',
                                         'timedOut', 'budgetExceeded', 'interrupted')),
  terminal_reason    text,
  provider           text,
  model              text,
  input              jsonb,
  output             text,
  error              text,
  input_tokens       bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  cache_read_tokens  bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
  cache_write_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
  output_tokens      bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  reasoning_tokens   bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
  total_tokens       bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
  cost               numeric(20, 10) CHECK (cost IS NULL OR cost >= 0),
  cost_unknown       boolean NOT NULL DEFAULT false,
  usage_missing      boolean NOT NULL DEFAULT false,
  model_call_count   integer NOT NULL DEFAULT 0,
  tool_call_count    integer NOT NULL DEFAULT 0,
  started_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz,
  duration_ms        integer,
  correlation_id     text NOT NULL,
  trace_id           text,
  instance_id        text,
  last_heartbeat_at  timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_runs_user_idx ON workflow_runs (user_id, started_at DESC);
CREATE INDEX workflow_runs_conversation_idx ON workflow_runs (conversation_id);
CREATE INDEX workflow_runs_correlation_idx ON workflow_runs (correlation_id);
CREATE INDEX workflow_runs_active_idx ON workflow_runs (instance_id) WHERE status IN ('queued', 'running');

CREATE TABLE messages (
  id                  text PRIMARY KEY,
  conversation_id     text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  role                text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content             text NOT NULL,
  sequence_number     integer NOT NULL CHECK (sequence_number >= 0),
  prompt_tokens       bigint CHECK (prompt_tokens IS NULL OR prompt_tokens >= 0),
  completion_tokens   bigint CHECK (completion_tokens IS NULL OR completion_tokens >= 0),
  total_tokens        bigint CHECK (total_tokens IS NULL OR total_tokens >= 0),
  cached_input_tokens bigint CHECK (cached_input_tokens IS NULL OR cached_input_tokens >= 0),
  reasoning_tokens    bigint CHECK (reasoning_tokens IS NULL OR reasoning_tokens >= 0),
  cost                numeric(20, 10) CHECK (cost IS NULL OR cost >= 0),
  model_used          text,
  provider_used       text,
  finish_reason       text,
  response_time_ms    integer,
  run_id              text REFERENCES workflow_runs (id) ON DELETE SET NULL,
  correlation_id      text,
  tool_calls          jsonb,
  extra_metadata      jsonb,
  rating              double precision,
  rating_count        integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (conversation_id, sequence_number)
);
CREATE INDEX messages_run_idx ON messages (run_id);
-- One assistant message per run: replays of a run's records cannot add a second.
CREATE UNIQUE INDEX messages_run_assistant_key ON messages (run_id) WHERE role = 'assistant';

CREATE TABLE model_prices (
  id                    text PRIMARY KEY,
  provider              text NOT NULL,
  model_pattern         text NOT NULL,
  valid_from            timestamptz NOT NULL,
  input_per_mtok        numeric(20, 10) NOT NULL CHECK (input_per_mtok >= 0),
  cache_read_per_mtok   numeric(20, 10) NOT NULL CHECK (cache_read_per_mtok >= 0),
  cache_write_per_mtok  numeric(20, 10) NOT NULL CHECK (cache_write_per_mtok >= 0),
  output_per_mtok       numeric(20, 10) NOT NULL CHECK (output_per_mtok >= 0),
  -- 'shipped' rows come with the service; 'operator' rows override them.
  source                text NOT NULL DEFAULT 'shipped' CHECK (source IN ('shipped', 'operator')),
  created_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, model_pattern, valid_from, source)
);

CREATE TABLE model_calls (
  id                  text PRIMARY KEY,
  run_id              text NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  sequence            integer NOT NULL,
  provider            text NOT NULL,
  request_model       text NOT NULL,
  response_model      text,
  input_tokens        bigint CHECK (input_tokens IS NULL OR input_tokens >= 0),
  cache_read_tokens   bigint CHECK (cache_read_tokens IS NULL OR cache_read_tokens >= 0),
  cache_write_tokens  bigint CHECK (cache_write_tokens IS NULL OR cache_write_tokens >= 0),
  output_tokens       bigint CHECK (output_tokens IS NULL OR output_tokens >= 0),
  reasoning_tokens    bigint CHECK (reasoning_tokens IS NULL OR reasoning_tokens >= 0),
  cost                numeric(20, 10) CHECK (cost IS NULL OR cost >= 0),
  price_id            text REFERENCES model_prices (id),
  latency_ms          integer,
  time_to_first_token_ms integer,
  finish_reason       text,
  usage_source        text NOT NULL CHECK (usage_source IN ('provider', 'estimated', 'missing')),
  error               text,
  started_at          timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, sequence)
);

CREATE TABLE tool_calls (
  id            text PRIMARY KEY,
  run_id        text NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  sequence      integer NOT NULL,
  tool          text NOT NULL,
  arguments     jsonb,
  result_size   integer,
  duration_ms   integer,
  error         text,
  started_at    timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, sequence)
);

CREATE TABLE events (
  id               text PRIMARY KEY,
  category         text NOT NULL,
  type             text NOT NULL,
  priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'critical')),
  user_id          text REFERENCES users (id) ON DELETE CASCADE,
  conversation_id  text REFERENCES conversations (id) ON DELETE SET NULL,
  run_id           text REFERENCES workflow_runs (id) ON DELETE CASCADE,
  correlation_id   text,
  data             jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_created_idx ON events (created_at, id);
CREATE INDEX events_user_idx ON events (user_id, id);
CREATE INDEX events_category_type_idx ON events (category, type, id);
CREATE INDEX events_conversation_idx ON events (conversation_id, id);
CREATE INDEX events_run_idx ON events (run_id, id);
CREATE INDEX events_correlation_idx ON events (correlation_id, id);

-- Hourly analytics rollups, one row per hour × user × provider × model, upserted by
-- the analytics span processor. Latency histogram buckets are cumulative-free counts
-- per upper bound (ms) listed in latency_bounds_ms.
CREATE TABLE analytics_hourly (
  bucket_start        timestamptz NOT NULL,
  user_id             text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider            text NOT NULL,
  model               text NOT NULL,
  input_tokens        bigint NOT NULL DEFAULT 0,
  cache_read_tokens   bigint NOT NULL DEFAULT 0,
  cache_write_tokens  bigint NOT NULL DEFAULT 0,
  output_tokens       bigint NOT NULL DEFAULT 0,
  reasoning_tokens    bigint NOT NULL DEFAULT 0,
  cost                numeric(20, 10) NOT NULL DEFAULT 0,
  model_calls         integer NOT NULL DEFAULT 0,
  runs_total          integer NOT NULL DEFAULT 0,
  runs_by_status      jsonb NOT NULL DEFAULT '{}'::jsonb,
  errors              integer NOT NULL DEFAULT 0,
  latency_sum_ms      bigint NOT NULL DEFAULT 0,
  latency_count       integer NOT NULL DEFAULT 0,
  latency_buckets     jsonb NOT NULL DEFAULT '[]'::jsonb,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bucket_start, user_id, provider, model)
);
CREATE INDEX analytics_hourly_user_idx ON analytics_hourly (user_id, bucket_start);

-- Runs whose records a writer has committed, keyed by run id: a replay is a no-op.
CREATE TABLE applied_runs (
  run_id      text PRIMARY KEY,
  applied_at  timestamptz NOT NULL DEFAULT now()
);
