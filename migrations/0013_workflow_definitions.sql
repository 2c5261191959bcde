-- Workflow definitions and templates: graphs a user builds in the frontend's builder
-- (its nodes and edges as sent, translated into this service's graph definitions when
-- validated and run). Their run figures are not stored here: they are read from the runs
-- that used them (workflow_runs.input carries workflow_definition_id / workflow_template_id),
-- so there is one producer of each figure. The built-in templates are not rows: they live
-- in the code (src/graphs/templates.ts). Works on PostgreSQL 15+ and PGlite.

CREATE TABLE workflow_definitions (
  id           text PRIMARY KEY,
  owner_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL,
  description  text,
  nodes        jsonb NOT NULL,
  edges        jsonb NOT NULL,
  metadata     jsonb,
  is_public    boolean NOT NULL DEFAULT false,
  tags         jsonb,
  template_id  text,
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_definitions_owner_idx ON workflow_definitions (owner_id, created_at DESC);

CREATE TABLE workflow_templates (
  id                     text PRIMARY KEY,
  owner_id               text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                   text NOT NULL,
  description            text NOT NULL,
  category               text NOT NULL DEFAULT 'custom',
  nodes                  jsonb NOT NULL,
  edges                  jsonb NOT NULL,
  default_params         jsonb NOT NULL DEFAULT '{}'::jsonb,
  required_tools         jsonb,
  required_retrievers    jsonb,
  tags                   jsonb,
  is_public              boolean NOT NULL DEFAULT false,
  workflow_definition_id text,
  base_template_id       text,
  version                integer NOT NULL DEFAULT 1,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_templates_owner_idx ON workflow_templates (owner_id, created_at DESC);

-- Per-definition executions and analytics read the runs that name the definition.
CREATE INDEX workflow_runs_definition_idx ON workflow_runs ((input ->> 'workflow_definition_id'), started_at DESC)
  WHERE input ? 'workflow_definition_id';
CREATE INDEX workflow_runs_template_idx ON workflow_runs ((input ->> 'workflow_template_id'))
  WHERE input ? 'workflow_template_id';
