-- What Grafana's PostgreSQL datasource (user grafana_reader) may read: the tables and
-- columns the dashboards in grafana/dashboards/ query, and nothing else: no password
-- hashes, e-mail addresses, message or run contents, tokens or keys.
-- Applied by the `grafana-db-reader` service of docker-compose.yml after the app has
-- migrated the database; test/deploy/dashboards.test.ts runs every dashboard query as
-- a role holding exactly these grants. Add a column here when a dashboard needs it.
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON analytics_hourly TO grafana_reader;
GRANT SELECT ON model_calls TO grafana_reader;
GRANT SELECT (id, username) ON users TO grafana_reader;
GRANT SELECT (id, user_id, conversation_id, workflow, status, terminal_reason, provider, model,
              input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
              total_tokens, cost, cost_unknown, usage_missing, model_call_count, tool_call_count,
              started_at, finished_at, duration_ms, correlation_id, trace_id, instance_id)
  ON workflow_runs TO grafana_reader;
