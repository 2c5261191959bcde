-- Hourly analytics rollups summed over users: one row per hour × provider × model, for
-- the all-users analytics reports (superusers). analytics_hourly holds a row per hour ×
-- user × provider × model, nearly one per run when many users each chat a little, so an
-- all-users report over 90 days read hundreds of thousands of rows; this table holds a
-- few per hour. Same columns and meaning as analytics_hourly; written by the same
-- statement batch, in the same transaction (src/analytics/analytics-upsert.ts), so the
-- two always agree. Works on PostgreSQL 15+ and PGlite.
CREATE TABLE analytics_hourly_totals (
  bucket_start        timestamptz NOT NULL,
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
  PRIMARY KEY (bucket_start, provider, model)
);

-- The rollups written before this migration.
INSERT INTO analytics_hourly_totals (
  bucket_start, provider, model, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
  reasoning_tokens, cost, model_calls, runs_total, runs_by_status, errors, latency_sum_ms, latency_count,
  latency_buckets, updated_at
)
SELECT s.bucket_start, s.provider, s.model, s.input_tokens, s.cache_read_tokens, s.cache_write_tokens,
  s.output_tokens, s.reasoning_tokens, s.cost, s.model_calls, s.runs_total,
  coalesce(st.runs_by_status, '{}'::jsonb), s.errors, s.latency_sum_ms, s.latency_count,
  coalesce(lb.latency_buckets, '[]'::jsonb), now()
FROM (
  SELECT bucket_start, provider, model,
    sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens, sum(cost) AS cost, sum(model_calls) AS model_calls,
    sum(runs_total) AS runs_total, sum(errors) AS errors, sum(latency_sum_ms) AS latency_sum_ms,
    sum(latency_count) AS latency_count
  FROM analytics_hourly
  GROUP BY bucket_start, provider, model
) AS s
LEFT JOIN (
  SELECT bucket_start, provider, model, jsonb_object_agg(key, total) AS runs_by_status
  FROM (
    SELECT h.bucket_start, h.provider, h.model, e.key, sum(e.value::bigint) AS total
    FROM analytics_hourly AS h CROSS JOIN LATERAL jsonb_each_text(h.runs_by_status) AS e
    GROUP BY h.bucket_start, h.provider, h.model, e.key
  ) AS per_status
  GROUP BY bucket_start, provider, model
) AS st USING (bucket_start, provider, model)
LEFT JOIN (
  SELECT bucket_start, provider, model, jsonb_agg(total ORDER BY position) AS latency_buckets
  FROM (
    SELECT h.bucket_start, h.provider, h.model, e.position, sum(e.value::bigint) AS total
    FROM analytics_hourly AS h
    CROSS JOIN LATERAL jsonb_array_elements_text(h.latency_buckets) WITH ORDINALITY AS e(value, position)
    GROUP BY h.bucket_start, h.provider, h.model, e.position
  ) AS per_position
  GROUP BY bucket_start, provider, model
) AS lb USING (bucket_start, provider, model);

-- Rows leaving analytics_hourly (a user deleted, with their rollups; an operator's
-- cleanup) leave the totals too, so the totals stay the sums over analytics_hourly. A
-- totals row with no model call and no run left has no per-user row behind it: removed.
CREATE FUNCTION analytics_hourly_totals_subtract() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE analytics_hourly_totals AS t SET
    input_tokens = t.input_tokens - d.input_tokens,
    cache_read_tokens = t.cache_read_tokens - d.cache_read_tokens,
    cache_write_tokens = t.cache_write_tokens - d.cache_write_tokens,
    output_tokens = t.output_tokens - d.output_tokens,
    reasoning_tokens = t.reasoning_tokens - d.reasoning_tokens,
    cost = t.cost - d.cost,
    model_calls = t.model_calls - d.model_calls,
    runs_total = t.runs_total - d.runs_total,
    errors = t.errors - d.errors,
    latency_sum_ms = t.latency_sum_ms - d.latency_sum_ms,
    latency_count = t.latency_count - d.latency_count,
    runs_by_status = (
      SELECT coalesce(jsonb_object_agg(s.key, s.total) FILTER (WHERE s.total <> 0), '{}'::jsonb)
      FROM (
        SELECT e.key, sum(e.value) AS total
        FROM (
          SELECT key, value::bigint AS value FROM jsonb_each_text(t.runs_by_status)
          UNION ALL
          SELECT o.key, -(o.value::bigint)
          FROM deleted_rows AS x CROSS JOIN LATERAL jsonb_each_text(x.runs_by_status) AS o
          WHERE x.bucket_start = t.bucket_start AND x.provider = t.provider AND x.model = t.model
        ) AS e
        GROUP BY e.key
      ) AS s
    ),
    latency_buckets = (
      SELECT coalesce(jsonb_agg(s.total ORDER BY s.position), '[]'::jsonb)
      FROM (
        SELECT e.position, sum(e.value) AS total
        FROM (
          SELECT a.position, a.value::bigint AS value
          FROM jsonb_array_elements_text(t.latency_buckets) WITH ORDINALITY AS a(value, position)
          UNION ALL
          SELECT b.position, -(b.value::bigint)
          FROM deleted_rows AS x
          CROSS JOIN LATERAL jsonb_array_elements_text(x.latency_buckets) WITH ORDINALITY AS b(value, position)
          WHERE x.bucket_start = t.bucket_start AND x.provider = t.provider AND x.model = t.model
        ) AS e
        GROUP BY e.position
      ) AS s
    ),
    updated_at = now()
  FROM (
    SELECT bucket_start, provider, model,
      sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens,
      sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens,
      sum(reasoning_tokens) AS reasoning_tokens, sum(cost) AS cost, sum(model_calls) AS model_calls,
      sum(runs_total) AS runs_total, sum(errors) AS errors, sum(latency_sum_ms) AS latency_sum_ms,
      sum(latency_count) AS latency_count
    FROM deleted_rows
    GROUP BY bucket_start, provider, model
  ) AS d
  WHERE t.bucket_start = d.bucket_start AND t.provider = d.provider AND t.model = d.model;
  DELETE FROM analytics_hourly_totals AS t
  USING (SELECT DISTINCT bucket_start, provider, model FROM deleted_rows) AS d
  WHERE t.bucket_start = d.bucket_start AND t.provider = d.provider AND t.model = d.model
    AND t.model_calls = 0 AND t.runs_total = 0;
  RETURN NULL;
END
$$;

CREATE TRIGGER analytics_hourly_totals_on_delete
  AFTER DELETE ON analytics_hourly
  REFERENCING OLD TABLE AS deleted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION analytics_hourly_totals_subtract();
