-- Message and conversation activity rollups, and a plain-column level of the token/run
-- rollups, so that every analytics report reads a few thousand rows at most whatever
-- the window (issue 14: 1,000,000 messages, 90 days, every report under 50 ms).
--
-- Every table here is written by triggers on the rows it sums, in the transaction that
-- writes them: whatever writes messages, conversations or hourly rollups (a chat turn,
-- the run-record writer, orphan recovery, a bulk load, an operator's SQL, a cascade)
-- moves them, so they cannot drift. Inserts are statement-level (one upsert per
-- statement, rows in key order so concurrent writers lock them in the same order);
-- changes of a row's keys are row-level with a WHEN clause (free when nothing changes).
--
-- Levels: rows of span_hours 1 (an hour) and 24 (a UTC day). A report reads day rows for
-- the whole days of its window and hour rows for the partial days at its ends.
-- user_id '' is every user. `shard` (0-7, from the conversation id) splits each bucket's
-- row in eight, so concurrent chat turns of one user (or of everyone, for the '' rows)
-- rarely wait for each other's row locks. Works on PostgreSQL 15+ and PGlite.

-- Messages per role and conversations created per status, counted at the hour and the
-- day of messages.created_at / conversations.created_at.
CREATE TABLE activity_rollups (
  user_id                 text NOT NULL,
  span_hours              smallint NOT NULL CHECK (span_hours IN (1, 24)),
  bucket_start            timestamptz NOT NULL,
  shard                   smallint NOT NULL,
  user_messages           bigint NOT NULL DEFAULT 0,
  assistant_messages      bigint NOT NULL DEFAULT 0,
  system_messages         bigint NOT NULL DEFAULT 0,
  tool_messages           bigint NOT NULL DEFAULT 0,
  conversations_active    bigint NOT NULL DEFAULT 0,
  conversations_archived  bigint NOT NULL DEFAULT 0,
  conversations_deleted   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, span_hours, bucket_start, shard)
);

-- Each conversation's active hours (an hour in which it has a message), with the active
-- hour before it ('-infinity': none). The source of conversation_activity.
CREATE TABLE conversation_hours (
  conversation_id  text NOT NULL,
  bucket_start     timestamptz NOT NULL,
  user_id          text NOT NULL,
  previous_start   timestamptz NOT NULL,
  PRIMARY KEY (conversation_id, bucket_start)
);

-- Distinct conversations with messages in a window, made additive: an hour row counts
-- the conversations active in that hour by their previous active hour; a day row counts
-- the conversations active that day by their last active hour before the day. The
-- conversations with messages in [from, to) are exactly the rows of the window's buckets
-- whose previous_start < from: each conversation counted once, at its first active
-- bucket in the window.
CREATE TABLE conversation_activity (
  user_id         text NOT NULL,
  span_hours      smallint NOT NULL CHECK (span_hours IN (1, 24)),
  bucket_start    timestamptz NOT NULL,
  previous_start  timestamptz NOT NULL,
  shard           smallint NOT NULL,
  conversations   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, span_hours, bucket_start, previous_start, shard)
);

-- The hourly token/run rollups (analytics_hourly, analytics_hourly_totals as user_id '')
-- in plain columns: day rows per provider × model, hour rows summed over providers and
-- models (provider = model = '') for the reports' hour-of-day figures.
CREATE TABLE analytics_spans (
  user_id               text NOT NULL,
  span_hours            smallint NOT NULL CHECK (span_hours IN (1, 24)),
  bucket_start          timestamptz NOT NULL,
  provider              text NOT NULL,
  model                 text NOT NULL,
  input_tokens          bigint NOT NULL DEFAULT 0,
  cache_read_tokens     bigint NOT NULL DEFAULT 0,
  cache_write_tokens    bigint NOT NULL DEFAULT 0,
  output_tokens         bigint NOT NULL DEFAULT 0,
  reasoning_tokens      bigint NOT NULL DEFAULT 0,
  cost                  numeric(20, 10) NOT NULL DEFAULT 0,
  model_calls           bigint NOT NULL DEFAULT 0,
  runs_total            bigint NOT NULL DEFAULT 0,
  runs_queued           bigint NOT NULL DEFAULT 0,
  runs_running          bigint NOT NULL DEFAULT 0,
  runs_completed        bigint NOT NULL DEFAULT 0,
  runs_failed           bigint NOT NULL DEFAULT 0,
  runs_cancelled        bigint NOT NULL DEFAULT 0,
  runs_timed_out        bigint NOT NULL DEFAULT 0,
  runs_budget_exceeded  bigint NOT NULL DEFAULT 0,
  runs_interrupted      bigint NOT NULL DEFAULT 0,
  errors                bigint NOT NULL DEFAULT 0,
  latency_sum_ms        bigint NOT NULL DEFAULT 0,
  latency_count         bigint NOT NULL DEFAULT 0,
  -- latency_buckets element by element (src/analytics/latency-histogram.ts).
  latency_le_100        bigint NOT NULL DEFAULT 0,
  latency_le_250        bigint NOT NULL DEFAULT 0,
  latency_le_500        bigint NOT NULL DEFAULT 0,
  latency_le_1000       bigint NOT NULL DEFAULT 0,
  latency_le_2500       bigint NOT NULL DEFAULT 0,
  latency_le_5000       bigint NOT NULL DEFAULT 0,
  latency_le_10000      bigint NOT NULL DEFAULT 0,
  latency_le_30000      bigint NOT NULL DEFAULT 0,
  latency_le_60000      bigint NOT NULL DEFAULT 0,
  latency_le_inf        bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, span_hours, bucket_start, provider, model)
);

-- What the activity functions take: a message or a conversation reduced to its keys.
CREATE TYPE activity_message AS (conversation_id text, user_id text, role text, created_at timestamptz);
CREATE TYPE activity_conversation AS (id text, user_id text, status text, created_at timestamptz);

-- The functions are PL/pgSQL so that each session plans their statements once.

-- Moves conversation_activity by active hours that appeared (`added`) and went (`removed`).
CREATE FUNCTION conversation_activity_move(added conversation_hours[], removed conversation_hours[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH delta AS (
    SELECT 1 AS n, a.* FROM unnest(added) AS a
    UNION ALL
    SELECT -1, r.* FROM unnest(removed) AS r
  ),
  levels AS (
    SELECT u.user_id, s.span_hours,
      CASE s.span_hours WHEN 1 THEN d.bucket_start ELSE date_trunc('day', d.bucket_start, 'UTC') END AS bucket_start,
      d.previous_start, (hashtext(d.conversation_id) & 7)::int2 AS shard, d.n
    FROM delta AS d
    CROSS JOIN (VALUES (1::int2), (24::int2)) AS s(span_hours)
    CROSS JOIN LATERAL (VALUES (d.user_id), ('')) AS u(user_id)
    -- A day row only for the conversation's first active hour of that day.
    WHERE s.span_hours = 1 OR d.previous_start < date_trunc('day', d.bucket_start, 'UTC')
  )
  INSERT INTO conversation_activity AS a (user_id, span_hours, bucket_start, previous_start, shard, conversations)
  SELECT user_id, span_hours, bucket_start, previous_start, shard, sum(n)
  FROM levels
  GROUP BY user_id, span_hours, bucket_start, previous_start, shard
  HAVING sum(n) <> 0
  ORDER BY user_id, span_hours, bucket_start, previous_start, shard
  ON CONFLICT (user_id, span_hours, bucket_start, previous_start, shard)
  DO UPDATE SET conversations = a.conversations + EXCLUDED.conversations;
END
$$;

-- Recomputes the active hours of the conversations `ids` from their messages and moves
-- conversation_activity by the rows that changed (+1 new, -1 gone).
CREATE FUNCTION conversation_hours_refresh(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  added conversation_hours[];
  removed conversation_hours[];
BEGIN
  WITH fresh AS (
    SELECT h.conversation_id, h.bucket_start, c.user_id,
      coalesce(lag(h.bucket_start) OVER (PARTITION BY h.conversation_id ORDER BY h.bucket_start), '-infinity'::timestamptz) AS previous_start
    FROM (
      SELECT DISTINCT m.conversation_id, date_trunc('hour', m.created_at, 'UTC') AS bucket_start
      FROM messages AS m WHERE m.conversation_id = ANY(ids)
    ) AS h
    JOIN conversations AS c ON c.id = h.conversation_id
  ),
  stale AS (
    SELECT conversation_id, bucket_start, user_id, previous_start FROM conversation_hours WHERE conversation_id = ANY(ids)
  )
  SELECT
    ARRAY(SELECT ROW(f.*)::conversation_hours FROM fresh AS f
          WHERE NOT EXISTS (SELECT 1 FROM stale AS s WHERE s.conversation_id = f.conversation_id AND s.bucket_start = f.bucket_start
                              AND s.previous_start = f.previous_start AND s.user_id = f.user_id)),
    ARRAY(SELECT ROW(s.*)::conversation_hours FROM stale AS s
          WHERE NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.conversation_id = s.conversation_id AND f.bucket_start = s.bucket_start
                              AND f.previous_start = s.previous_start AND f.user_id = s.user_id))
  INTO added, removed;
  DELETE FROM conversation_hours AS t USING unnest(removed) AS r
  WHERE t.conversation_id = r.conversation_id AND t.bucket_start = r.bucket_start
    AND NOT EXISTS (SELECT 1 FROM unnest(added) AS a WHERE a.conversation_id = r.conversation_id AND a.bucket_start = r.bucket_start);
  INSERT INTO conversation_hours (conversation_id, bucket_start, user_id, previous_start)
  SELECT a.conversation_id, a.bucket_start, a.user_id, a.previous_start FROM unnest(added) AS a
  ORDER BY a.conversation_id, a.bucket_start
  ON CONFLICT (conversation_id, bucket_start) DO UPDATE SET user_id = EXCLUDED.user_id, previous_start = EXCLUDED.previous_start;
  PERFORM conversation_activity_move(added, removed);
END
$$;

-- New messages that all lie at or after their conversation's last active hour (a chat's
-- next turn, the common case): their new active hours follow the stored ones, so they are
-- appended without reading the conversation's messages.
CREATE FUNCTION conversation_hours_append(plus activity_message[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  added conversation_hours[];
BEGIN
  WITH last AS (
    SELECT h.conversation_id, max(h.bucket_start) AS last_start FROM conversation_hours AS h
    WHERE h.conversation_id IN (SELECT p.conversation_id FROM unnest(plus) AS p)
    GROUP BY h.conversation_id
  ),
  new_hours AS (
    SELECT DISTINCT p.conversation_id, date_trunc('hour', p.created_at, 'UTC') AS bucket_start, p.user_id FROM unnest(plus) AS p
  ),
  fresh AS (
    SELECT n.conversation_id, n.bucket_start, n.user_id,
      coalesce(lag(n.bucket_start) OVER (PARTITION BY n.conversation_id ORDER BY n.bucket_start), l.last_start, '-infinity'::timestamptz) AS previous_start
    FROM new_hours AS n LEFT JOIN last AS l ON l.conversation_id = n.conversation_id
    WHERE l.last_start IS NULL OR n.bucket_start > l.last_start
  ),
  inserted AS (
    INSERT INTO conversation_hours (conversation_id, bucket_start, user_id, previous_start)
    SELECT conversation_id, bucket_start, user_id, previous_start FROM fresh ORDER BY conversation_id, bucket_start
    RETURNING conversation_id, bucket_start, user_id, previous_start
  )
  SELECT ARRAY(SELECT ROW(i.*)::conversation_hours FROM inserted AS i) INTO added;
  PERFORM conversation_activity_move(added, '{}'::conversation_hours[]);
END
$$;

-- Adds the messages `plus` and subtracts the messages `minus` (role counts), then
-- refreshes their conversations' active hours.
CREATE FUNCTION activity_messages_apply(plus activity_message[], minus activity_message[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO activity_rollups AS a (user_id, span_hours, bucket_start, shard, user_messages, assistant_messages, system_messages, tool_messages)
  SELECT u.user_id, s.span_hours, date_trunc(CASE s.span_hours WHEN 1 THEN 'hour' ELSE 'day' END, m.created_at, 'UTC'),
    (hashtext(m.conversation_id) & 7)::int2,
    coalesce(sum(m.n) FILTER (WHERE m.role = 'user'), 0), coalesce(sum(m.n) FILTER (WHERE m.role = 'assistant'), 0),
    coalesce(sum(m.n) FILTER (WHERE m.role = 'system'), 0), coalesce(sum(m.n) FILTER (WHERE m.role = 'tool'), 0)
  FROM (
    SELECT 1 AS n, p.* FROM unnest(plus) AS p
    UNION ALL
    SELECT -1, q.* FROM unnest(minus) AS q
  ) AS m
  CROSS JOIN (VALUES (1::int2), (24::int2)) AS s(span_hours)
  CROSS JOIN LATERAL (VALUES (m.user_id), ('')) AS u(user_id)
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (user_id, span_hours, bucket_start, shard) DO UPDATE SET
    user_messages = a.user_messages + EXCLUDED.user_messages,
    assistant_messages = a.assistant_messages + EXCLUDED.assistant_messages,
    system_messages = a.system_messages + EXCLUDED.system_messages,
    tool_messages = a.tool_messages + EXCLUDED.tool_messages;
  IF cardinality(minus) = 0 AND NOT EXISTS (
    SELECT 1 FROM unnest(plus) AS p
    JOIN conversation_hours AS h ON h.conversation_id = p.conversation_id AND h.bucket_start > date_trunc('hour', p.created_at, 'UTC')
  ) THEN
    PERFORM conversation_hours_append(plus);
  ELSE
    PERFORM conversation_hours_refresh(ARRAY(
      SELECT DISTINCT x.conversation_id FROM (SELECT conversation_id FROM unnest(plus) UNION ALL SELECT conversation_id FROM unnest(minus)) AS x
      ORDER BY 1));
  END IF;
END
$$;

-- Adds the conversations `plus` and subtracts `minus` (created per status).
CREATE FUNCTION activity_conversations_apply(plus activity_conversation[], minus activity_conversation[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO activity_rollups AS a (user_id, span_hours, bucket_start, shard, conversations_active, conversations_archived, conversations_deleted)
  SELECT u.user_id, s.span_hours, date_trunc(CASE s.span_hours WHEN 1 THEN 'hour' ELSE 'day' END, c.created_at, 'UTC'),
    (hashtext(c.id) & 7)::int2,
    coalesce(sum(c.n) FILTER (WHERE c.status = 'active'), 0), coalesce(sum(c.n) FILTER (WHERE c.status = 'archived'), 0),
    coalesce(sum(c.n) FILTER (WHERE c.status = 'deleted'), 0)
  FROM (
    SELECT 1 AS n, p.* FROM unnest(plus) AS p
    UNION ALL
    SELECT -1, q.* FROM unnest(minus) AS q
  ) AS c
  CROSS JOIN (VALUES (1::int2), (24::int2)) AS s(span_hours)
  CROSS JOIN LATERAL (VALUES (c.user_id), ('')) AS u(user_id)
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (user_id, span_hours, bucket_start, shard) DO UPDATE SET
    conversations_active = a.conversations_active + EXCLUDED.conversations_active,
    conversations_archived = a.conversations_archived + EXCLUDED.conversations_archived,
    conversations_deleted = a.conversations_deleted + EXCLUDED.conversations_deleted;
END

$$;

-- Adds the hourly rollup rows `plus` and subtracts `minus` (totals rows carry user_id '').
CREATE FUNCTION analytics_spans_apply(plus analytics_hourly[], minus analytics_hourly[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH d AS (
    SELECT 1 AS n, p.* FROM unnest(plus) AS p
    UNION ALL
    SELECT -1, q.* FROM unnest(minus) AS q
  ),
  levels AS (
    SELECT 24::int2 AS span_hours, date_trunc('day', d.bucket_start, 'UTC') AS bucket, d.provider AS by_provider, d.model AS by_model, d.*
    FROM d
    UNION ALL
    SELECT 1::int2, d.bucket_start, '', '', d.* FROM d
  )
  INSERT INTO analytics_spans AS a (
    user_id, span_hours, bucket_start, provider, model, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost, model_calls, runs_total, runs_queued, runs_running, runs_completed, runs_failed, runs_cancelled,
    runs_timed_out, runs_budget_exceeded, runs_interrupted, errors, latency_sum_ms, latency_count, latency_le_100,
    latency_le_250, latency_le_500, latency_le_1000, latency_le_2500, latency_le_5000, latency_le_10000, latency_le_30000,
    latency_le_60000, latency_le_inf
  )
  SELECT l.user_id, l.span_hours, l.bucket, l.by_provider, l.by_model,
    sum(l.n * l.input_tokens), sum(l.n * l.cache_read_tokens), sum(l.n * l.cache_write_tokens), sum(l.n * l.output_tokens),
    sum(l.n * l.reasoning_tokens), sum(l.n * l.cost), sum(l.n * l.model_calls), sum(l.n * l.runs_total),
    sum(l.n * coalesce((l.runs_by_status ->> 'queued')::int8, 0)), sum(l.n * coalesce((l.runs_by_status ->> 'running')::int8, 0)),
    sum(l.n * coalesce((l.runs_by_status ->> 'completed')::int8, 0)), sum(l.n * coalesce((l.runs_by_status ->> 'failed')::int8, 0)),
    sum(l.n * coalesce((l.runs_by_status ->> 'cancelled')::int8, 0)), sum(l.n * coalesce((l.runs_by_status ->> 'timedOut')::int8, 0)),
    sum(l.n * coalesce((l.runs_by_status ->> 'budgetExceeded')::int8, 0)), sum(l.n * coalesce((l.runs_by_status ->> 'interrupted')::int8, 0)),
    sum(l.n * l.errors), sum(l.n * l.latency_sum_ms), sum(l.n * l.latency_count),
    sum(l.n * coalesce((l.latency_buckets ->> 0)::int8, 0)), sum(l.n * coalesce((l.latency_buckets ->> 1)::int8, 0)),
    sum(l.n * coalesce((l.latency_buckets ->> 2)::int8, 0)), sum(l.n * coalesce((l.latency_buckets ->> 3)::int8, 0)),
    sum(l.n * coalesce((l.latency_buckets ->> 4)::int8, 0)), sum(l.n * coalesce((l.latency_buckets ->> 5)::int8, 0)),
    sum(l.n * coalesce((l.latency_buckets ->> 6)::int8, 0)), sum(l.n * coalesce((l.latency_buckets ->> 7)::int8, 0)),
    sum(l.n * coalesce((l.latency_buckets ->> 8)::int8, 0)), sum(l.n * coalesce((l.latency_buckets ->> 9)::int8, 0))
  FROM levels AS l
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (user_id, span_hours, bucket_start, provider, model) DO UPDATE SET
    input_tokens = a.input_tokens + EXCLUDED.input_tokens,
    cache_read_tokens = a.cache_read_tokens + EXCLUDED.cache_read_tokens,
    cache_write_tokens = a.cache_write_tokens + EXCLUDED.cache_write_tokens,
    output_tokens = a.output_tokens + EXCLUDED.output_tokens,
    reasoning_tokens = a.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost = a.cost + EXCLUDED.cost,
    model_calls = a.model_calls + EXCLUDED.model_calls,
    runs_total = a.runs_total + EXCLUDED.runs_total,
    runs_queued = a.runs_queued + EXCLUDED.runs_queued,
    runs_running = a.runs_running + EXCLUDED.runs_running,
    runs_completed = a.runs_completed + EXCLUDED.runs_completed,
    runs_failed = a.runs_failed + EXCLUDED.runs_failed,
    runs_cancelled = a.runs_cancelled + EXCLUDED.runs_cancelled,
    runs_timed_out = a.runs_timed_out + EXCLUDED.runs_timed_out,
    runs_budget_exceeded = a.runs_budget_exceeded + EXCLUDED.runs_budget_exceeded,
    runs_interrupted = a.runs_interrupted + EXCLUDED.runs_interrupted,
    errors = a.errors + EXCLUDED.errors,
    latency_sum_ms = a.latency_sum_ms + EXCLUDED.latency_sum_ms,
    latency_count = a.latency_count + EXCLUDED.latency_count,
    latency_le_100 = a.latency_le_100 + EXCLUDED.latency_le_100,
    latency_le_250 = a.latency_le_250 + EXCLUDED.latency_le_250,
    latency_le_500 = a.latency_le_500 + EXCLUDED.latency_le_500,
    latency_le_1000 = a.latency_le_1000 + EXCLUDED.latency_le_1000,
    latency_le_2500 = a.latency_le_2500 + EXCLUDED.latency_le_2500,
    latency_le_5000 = a.latency_le_5000 + EXCLUDED.latency_le_5000,
    latency_le_10000 = a.latency_le_10000 + EXCLUDED.latency_le_10000,
    latency_le_30000 = a.latency_le_30000 + EXCLUDED.latency_le_30000,
    latency_le_60000 = a.latency_le_60000 + EXCLUDED.latency_le_60000,
    latency_le_inf = a.latency_le_inf + EXCLUDED.latency_le_inf;
END

$$;

-- Triggers: messages.
CREATE FUNCTION activity_messages_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_messages_apply(
    ARRAY(SELECT ROW(n.conversation_id, c.user_id, n.role, n.created_at)::activity_message
          FROM new_rows AS n JOIN conversations AS c ON c.id = n.conversation_id),
    '{}'::activity_message[]);
  RETURN NULL;
END
$$;

-- A deleted message's conversation may be gone (a cascade): its user is in conversation_hours.
CREATE FUNCTION activity_messages_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_messages_apply(
    '{}'::activity_message[],
    ARRAY(SELECT ROW(o.conversation_id, h.user_id, o.role, o.created_at)::activity_message
          FROM old_rows AS o
          JOIN conversation_hours AS h ON h.conversation_id = o.conversation_id AND h.bucket_start = date_trunc('hour', o.created_at, 'UTC')));
  RETURN NULL;
END
$$;

CREATE FUNCTION activity_message_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_messages_apply(
    ARRAY(SELECT ROW(NEW.conversation_id, c.user_id, NEW.role, NEW.created_at)::activity_message
          FROM conversations AS c WHERE c.id = NEW.conversation_id),
    ARRAY(SELECT ROW(OLD.conversation_id, c.user_id, OLD.role, OLD.created_at)::activity_message
          FROM conversations AS c WHERE c.id = OLD.conversation_id));
  RETURN NULL;
END
$$;

CREATE TRIGGER activity_messages_on_insert AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_messages_inserted();
CREATE TRIGGER activity_messages_on_delete AFTER DELETE ON messages
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_messages_deleted();
CREATE TRIGGER activity_messages_on_change AFTER UPDATE OF conversation_id, role, created_at ON messages
  FOR EACH ROW
  WHEN (OLD.conversation_id IS DISTINCT FROM NEW.conversation_id OR OLD.role IS DISTINCT FROM NEW.role
        OR OLD.created_at IS DISTINCT FROM NEW.created_at)
  EXECUTE FUNCTION activity_message_changed();

-- Triggers: conversations (a conversation moving to another user keeps its messages'
-- active hours under the old user until a message of it changes: no route moves one).
CREATE FUNCTION activity_conversations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_conversations_apply(ARRAY(SELECT ROW(n.id, n.user_id, n.status, n.created_at)::activity_conversation FROM new_rows AS n), '{}'::activity_conversation[]);
  RETURN NULL;
END
$$;

CREATE FUNCTION activity_conversations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_conversations_apply('{}'::activity_conversation[], ARRAY(SELECT ROW(o.id, o.user_id, o.status, o.created_at)::activity_conversation FROM old_rows AS o));
  RETURN NULL;
END
$$;

CREATE FUNCTION activity_conversation_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM activity_conversations_apply(
    ARRAY[ROW(NEW.id, NEW.user_id, NEW.status, NEW.created_at)::activity_conversation],
    ARRAY[ROW(OLD.id, OLD.user_id, OLD.status, OLD.created_at)::activity_conversation]);
  RETURN NULL;
END
$$;

CREATE TRIGGER activity_conversations_on_insert AFTER INSERT ON conversations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_conversations_inserted();
CREATE TRIGGER activity_conversations_on_delete AFTER DELETE ON conversations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_conversations_deleted();
CREATE TRIGGER activity_conversations_on_change AFTER UPDATE OF status, user_id, created_at ON conversations
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.user_id IS DISTINCT FROM NEW.user_id
        OR OLD.created_at IS DISTINCT FROM NEW.created_at)
  EXECUTE FUNCTION activity_conversation_changed();

-- Triggers: the hourly rollups (per user, and summed over users as user_id '').
CREATE FUNCTION analytics_spans_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply(ARRAY(SELECT ROW(n.*)::analytics_hourly FROM new_rows AS n), '{}'::analytics_hourly[]);
  RETURN NULL;
END
$$;

CREATE FUNCTION analytics_spans_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply(ARRAY(SELECT ROW(n.*)::analytics_hourly FROM new_rows AS n), ARRAY(SELECT ROW(o.*)::analytics_hourly FROM old_rows AS o));
  RETURN NULL;
END
$$;

CREATE FUNCTION analytics_spans_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply('{}'::analytics_hourly[], ARRAY(SELECT ROW(o.*)::analytics_hourly FROM old_rows AS o));
  RETURN NULL;
END
$$;

CREATE TRIGGER analytics_spans_on_insert AFTER INSERT ON analytics_hourly
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_spans_inserted();
CREATE TRIGGER analytics_spans_on_update AFTER UPDATE ON analytics_hourly
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_spans_updated();
CREATE TRIGGER analytics_spans_on_delete AFTER DELETE ON analytics_hourly
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_spans_deleted();

-- analytics_hourly_totals rows as analytics_hourly rows of user ''.
CREATE FUNCTION analytics_totals_as_hourly(t analytics_hourly_totals) RETURNS analytics_hourly LANGUAGE sql IMMUTABLE AS $$
  SELECT ROW(t.bucket_start, '', t.provider, t.model, t.input_tokens, t.cache_read_tokens, t.cache_write_tokens, t.output_tokens,
    t.reasoning_tokens, t.cost, t.model_calls, t.runs_total, t.runs_by_status, t.errors, t.latency_sum_ms, t.latency_count,
    t.latency_buckets, t.updated_at)::analytics_hourly
$$;

CREATE FUNCTION analytics_totals_spans_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply(
    ARRAY(SELECT analytics_totals_as_hourly(ROW(n.*)::analytics_hourly_totals) FROM new_rows AS n),
    '{}'::analytics_hourly[]);
  RETURN NULL;
END
$$;

CREATE FUNCTION analytics_totals_spans_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply(
    ARRAY(SELECT analytics_totals_as_hourly(ROW(n.*)::analytics_hourly_totals) FROM new_rows AS n),
    ARRAY(SELECT analytics_totals_as_hourly(ROW(o.*)::analytics_hourly_totals) FROM old_rows AS o));
  RETURN NULL;
END
$$;

CREATE FUNCTION analytics_totals_spans_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM analytics_spans_apply(
    '{}'::analytics_hourly[],
    ARRAY(SELECT analytics_totals_as_hourly(ROW(o.*)::analytics_hourly_totals) FROM old_rows AS o));
  RETURN NULL;
END
$$;

CREATE TRIGGER analytics_totals_spans_on_insert AFTER INSERT ON analytics_hourly_totals
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_totals_spans_inserted();
CREATE TRIGGER analytics_totals_spans_on_update AFTER UPDATE ON analytics_hourly_totals
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_totals_spans_updated();
CREATE TRIGGER analytics_totals_spans_on_delete AFTER DELETE ON analytics_hourly_totals
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_totals_spans_deleted();

-- Rebuilds every table above from the rows they sum, through the same functions as the
-- triggers (the backfill below; tests compare it with what the triggers kept).
CREATE FUNCTION activity_rollups_rebuild() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  batch text[];
BEGIN
  DELETE FROM activity_rollups;
  DELETE FROM conversation_hours;
  DELETE FROM conversation_activity;
  DELETE FROM analytics_spans;
  PERFORM activity_conversations_apply(ARRAY(SELECT ROW(c.id, c.user_id, c.status, c.created_at)::activity_conversation FROM conversations AS c), '{}'::activity_conversation[]);
  -- Messages conversation by conversation, in slices of 5,000 conversations.
  FOR batch IN
    SELECT array_agg(id ORDER BY id) FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / 5000 AS slice FROM conversations) AS s GROUP BY slice ORDER BY slice
  LOOP
    PERFORM activity_messages_apply(
      ARRAY(SELECT ROW(m.conversation_id, c.user_id, m.role, m.created_at)::activity_message
            FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id WHERE m.conversation_id = ANY(batch)),
      '{}'::activity_message[]);
  END LOOP;
  PERFORM analytics_spans_apply(ARRAY(SELECT h FROM analytics_hourly AS h), '{}'::analytics_hourly[]);
  PERFORM analytics_spans_apply(
    ARRAY(SELECT analytics_totals_as_hourly(ROW(t.*)::analytics_hourly_totals) FROM analytics_hourly_totals AS t),
    '{}'::analytics_hourly[]);
END
$$;

-- The rows written before this migration.
SELECT activity_rollups_rebuild();

