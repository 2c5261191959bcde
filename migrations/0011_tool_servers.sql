-- Remote tool servers (MCP servers) registered per user, the tools their last
-- tools/list returned, and per-user switches for the built-in tools. Every instance reads
-- these rows when a run starts: they are the one place enabled/disabled is decided.
-- Works on PostgreSQL 15+ and PGlite.
CREATE TABLE tool_servers (
  id                      text PRIMARY KEY,
  user_id                 text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- An identifier: the prefix of the names the model sees for this server's tools.
  name                    text NOT NULL,
  display_name            text NOT NULL,
  description             text,
  base_url                text NOT NULL,
  -- 'http': Streamable HTTP, falling back to HTTP+SSE when the server answers 4xx; 'sse': HTTP+SSE only.
  transport_type          text NOT NULL DEFAULT 'http' CHECK (transport_type IN ('http', 'sse')),
  -- Sent with every request to the server (e.g. Authorization): secrets, never returned by the API.
  headers                 jsonb NOT NULL DEFAULT '{}'::jsonb,
  timeout_seconds         integer NOT NULL DEFAULT 30 CHECK (timeout_seconds BETWEEN 5 AND 300),
  auto_start              boolean NOT NULL DEFAULT true,
  auto_update             boolean NOT NULL DEFAULT true,
  max_failures            integer NOT NULL DEFAULT 3 CHECK (max_failures BETWEEN 1 AND 10),
  enabled                 boolean NOT NULL DEFAULT true,
  -- The last health check (a connection, tools/list or ping), whichever part of the service made it.
  last_health_check       timestamptz,
  last_health_ok          boolean,
  last_health_latency_ms  integer,
  last_health_error       text,
  last_success_at         timestamptz,
  consecutive_failures    integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  tools_refreshed_at      timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, name)
);
CREATE INDEX tool_servers_user_idx ON tool_servers (user_id, created_at);

CREATE TABLE tool_server_tools (
  id            text PRIMARY KEY,
  server_id     text NOT NULL REFERENCES tool_servers (id) ON DELETE CASCADE,
  -- The MCP tool's own name (what tools/call is sent).
  name          text NOT NULL,
  -- The name the model is offered and tool_calls.tool records: "<server>__<tool>".
  exposed_name  text NOT NULL,
  description   text,
  input_schema  jsonb NOT NULL,
  enabled       boolean NOT NULL DEFAULT true,
  -- False once the server's tools/list no longer lists it (kept: its switch and call history stay).
  available     boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (server_id, name)
);
CREATE INDEX tool_server_tools_exposed_idx ON tool_server_tools (exposed_name);

-- A row only where a user switched a built-in tool; no row means enabled.
CREATE TABLE user_builtin_tools (
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  tool        text NOT NULL,
  enabled     boolean NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, tool)
);
