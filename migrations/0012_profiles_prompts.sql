-- Profiles (model settings a chat turn can take) and prompts (system-prompt templates),
-- owned by one user each, readable by every user when public. Their usage figures are
-- not stored here: they are read from the runs that used them (workflow_runs.input
-- carries profile_id / prompt_id), so there is one producer of each figure.
-- Works on PostgreSQL 15+ and PGlite.

CREATE TABLE profiles (
  id                        text PRIMARY KEY,
  owner_id                  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                      text NOT NULL,
  description               text,
  profile_type              text NOT NULL DEFAULT 'custom'
                              CHECK (profile_type IN ('conversational', 'analytical', 'creative', 'technical', 'custom')),
  llm_provider              text,
  llm_model                 text,
  temperature               double precision NOT NULL DEFAULT 0.7 CHECK (temperature >= 0 AND temperature <= 2),
  top_p                     double precision,
  top_k                     integer,
  max_tokens                integer NOT NULL DEFAULT 4096 CHECK (max_tokens > 0),
  presence_penalty          double precision,
  frequency_penalty         double precision,
  context_window            integer NOT NULL DEFAULT 4096,
  system_prompt             text,
  memory_enabled            boolean NOT NULL DEFAULT true,
  memory_strategy           text,
  enable_retrieval          boolean NOT NULL DEFAULT false,
  retrieval_limit           integer NOT NULL DEFAULT 5,
  retrieval_score_threshold double precision NOT NULL DEFAULT 0.7,
  enable_tools              boolean NOT NULL DEFAULT false,
  available_tools           jsonb,
  tool_choice               text,
  content_filter_enabled    boolean NOT NULL DEFAULT true,
  safety_level              text,
  response_format           text,
  stream_response           boolean NOT NULL DEFAULT true,
  seed                      integer,
  stop_sequences            jsonb,
  logit_bias                jsonb,
  embedding_provider        text,
  embedding_model           text,
  is_public                 boolean NOT NULL DEFAULT false,
  tags                      jsonb,
  extra_metadata            jsonb,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profiles_owner_idx ON profiles (owner_id, created_at DESC);
CREATE INDEX profiles_public_idx ON profiles (created_at DESC) WHERE is_public;

CREATE TABLE prompts (
  id                    text PRIMARY KEY,
  owner_id              text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                  text NOT NULL,
  description           text,
  prompt_type           text NOT NULL DEFAULT 'template'
                          CHECK (prompt_type IN ('system', 'user', 'assistant', 'chain', 'template')),
  category              text NOT NULL DEFAULT 'general'
                          CHECK (category IN ('general', 'creative', 'analytical', 'technical', 'educational',
                                              'business', 'coding', 'custom')),
  content               text NOT NULL,
  -- The template's variables, as declared (checked against its placeholders on every write).
  variables             jsonb NOT NULL DEFAULT '[]'::jsonb,
  template_format       text NOT NULL DEFAULT 'f-string' CHECK (template_format IN ('f-string', 'mustache', 'jinja2')),
  input_schema          jsonb,
  output_schema         jsonb,
  max_length            integer,
  min_length            integer,
  required_variables    jsonb,
  examples              jsonb,
  test_cases            jsonb,
  suggested_temperature double precision,
  suggested_max_tokens  integer,
  suggested_providers   jsonb,
  is_chain              boolean NOT NULL DEFAULT false,
  chain_steps           jsonb,
  parent_prompt_id      text,
  -- Moves by one each time the content changes.
  version               integer NOT NULL DEFAULT 1 CHECK (version > 0),
  changelog             text,
  is_public             boolean NOT NULL DEFAULT false,
  rating                double precision,
  rating_count          integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
  tags                  jsonb,
  extra_metadata        jsonb,
  content_hash          text NOT NULL,
  estimated_tokens      integer,
  language              text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompts_owner_idx ON prompts (owner_id, created_at DESC);
CREATE INDEX prompts_public_idx ON prompts (created_at DESC) WHERE is_public;

-- The runs that used a profile or a prompt (their usage figures are read from these).
CREATE INDEX workflow_runs_profile_idx ON workflow_runs ((input ->> 'profile_id')) WHERE input ? 'profile_id';
CREATE INDEX workflow_runs_prompt_idx ON workflow_runs ((input ->> 'prompt_id')) WHERE input ? 'prompt_id';
