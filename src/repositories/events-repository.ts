import { sql, type CommonQueryMethods, type DatabasePool, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';

export const EventRow = z.object({
  id: z.string(),
  seq: z.number().int(),
  category: z.string(),
  type: z.string(),
  priority: z.string(),
  user_id: z.string().nullable(),
  conversation_id: z.string().nullable(),
  run_id: z.string().nullable(),
  correlation_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});
export type EventRow = z.infer<typeof EventRow>;

const EventCountRow = z.object({ category: z.string(), type: z.string(), total: z.number(), last_24h: z.number() });

export type EventFilter = {
  /** null: every user's events (superusers only; the route checks). */
  readonly userId: string | null;
  readonly category?: string | undefined;
  readonly type?: string | undefined;
  readonly correlationId?: string | undefined;
  readonly runId?: string | undefined;
  readonly conversationId?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
};

const columns = sql.fragment`id, seq, category, type, priority, user_id, conversation_id, run_id, correlation_id, data, created_at`;

/**
 * Inserts one event inside the caller's transaction and answers its row (its `seq` is
 * what an announcement on EVENTS_CHANNEL carries).
 */
export const insertEvent = async (
  tx: CommonQueryMethods,
  event: {
    id: string;
    category: string;
    type: string;
    priority: 'low' | 'normal' | 'high' | 'critical';
    userId: string | null;
    correlationId: string | null;
    data: Record<string, string | number | boolean | null>;
  },
): Promise<EventRow> =>
  tx.one(sql.type(EventRow)`
    INSERT INTO events (id, category, type, priority, user_id, correlation_id, data)
    VALUES (${event.id}, ${event.category}, ${event.type}, ${event.priority}, ${event.userId}, ${event.correlationId}, ${sql.jsonb(event.data)})
    RETURNING ${columns}`);

const conditions = (filter: EventFilter): FragmentSqlToken[] => {
  const parts: FragmentSqlToken[] = [];
  if (filter.userId !== null) parts.push(sql.fragment`user_id = ${filter.userId}`);
  if (filter.category !== undefined) parts.push(sql.fragment`category = ${filter.category}`);
  if (filter.type !== undefined) parts.push(sql.fragment`type = ${filter.type}`);
  if (filter.correlationId !== undefined) parts.push(sql.fragment`correlation_id = ${filter.correlationId}`);
  if (filter.runId !== undefined) parts.push(sql.fragment`run_id = ${filter.runId}`);
  if (filter.conversationId !== undefined) parts.push(sql.fragment`conversation_id = ${filter.conversationId}`);
  if (filter.since !== undefined) parts.push(sql.fragment`created_at >= ${filter.since}::timestamptz`);
  if (filter.until !== undefined) parts.push(sql.fragment`created_at < ${filter.until}::timestamptz`);
  return parts;
};

const where = (parts: readonly FragmentSqlToken[]) => (parts.length === 0 ? sql.fragment`TRUE` : sql.join(parts, sql.fragment` AND `));

/** Tells whether an event passes a filter (the live stream filters in memory). */
export const matchesFilter = (event: EventRow, filter: EventFilter): boolean =>
  (filter.userId === null || event.user_id === filter.userId) &&
  (filter.category === undefined || event.category === filter.category) &&
  (filter.type === undefined || event.type === filter.type) &&
  (filter.correlationId === undefined || event.correlation_id === filter.correlationId) &&
  (filter.runId === undefined || event.run_id === filter.runId) &&
  (filter.conversationId === undefined || event.conversation_id === filter.conversationId) &&
  (filter.since === undefined || Date.parse(event.created_at) >= Date.parse(filter.since)) &&
  (filter.until === undefined || Date.parse(event.created_at) < Date.parse(filter.until));

export const createEventsRepository = (pool: DatabasePool) => ({
  /** Newest first; `before` is the `seq` cursor of the previous page's last event. */
  list: async (filter: EventFilter, page: { limit: number; before?: number | undefined }): Promise<readonly EventRow[]> => {
    const parts = conditions(filter);
    if (page.before !== undefined) parts.push(sql.fragment`seq < ${page.before}`);
    return pool.any(sql.type(EventRow)`
      SELECT ${columns} FROM events WHERE ${where(parts)} ORDER BY seq DESC LIMIT ${page.limit}`);
  },

  /** Oldest first, after `afterSeq` (stream resume and polling). */
  after: async (filter: EventFilter, afterSeq: number, limit: number): Promise<readonly EventRow[]> => {
    const parts = [...conditions(filter), sql.fragment`seq > ${afterSeq}`];
    return pool.any(sql.type(EventRow)`
      SELECT ${columns} FROM events WHERE ${where(parts)} ORDER BY seq ASC LIMIT ${limit}`);
  },

  /** One user's events counted by category and stored type, and those of the last 24 hours. */
  countsFor: async (userId: string): Promise<readonly { category: string; type: string; total: number; last_24h: number }[]> =>
    pool.any(sql.type(EventCountRow)`
      SELECT category, type, count(*)::int8 AS total,
             count(*) FILTER (WHERE created_at >= now() - interval '24 hours')::int8 AS last_24h
      FROM events WHERE user_id = ${userId}
      GROUP BY category, type ORDER BY category, type`),

  latestSeq: async (): Promise<number> =>
    pool.oneFirst(sql.type(z.object({ seq: z.number() }))`SELECT COALESCE(MAX(seq), 0) AS seq FROM events`),
});

export type EventsRepository = ReturnType<typeof createEventsRepository>;
