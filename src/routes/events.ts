import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ulid } from '../ids.js';
import { EVENTS_CHANNEL } from '../db/notifications.js';
import { EventStreamHub } from '../events/event-stream-hub.js';
import { toFrontendEvent } from '../events/frontend-event.js';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT8_SAFE_MAX } from '../http/schemas/common-schemas.js';
import { lastEventIdOf, openEventStream } from '../http/sse.js';
import { createEventsRepository, insertEvent, type EventFilter } from '../repositories/events-repository.js';

type EventQuery = {
  category?: string;
  type?: string;
  correlation_id?: string;
  run_id?: string;
  conversation_id?: string;
  since?: string;
  until?: string;
  user_id?: string;
  all_users?: boolean;
  limit?: number;
  cursor?: number;
  last_event_id?: number;
};

const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const filterProperties = {
  category: { type: 'string', maxLength: 64 },
  type: { type: 'string', maxLength: 64 },
  correlation_id: id,
  run_id: id,
  conversation_id: id,
  since: { type: 'string', format: 'date-time' },
  until: { type: 'string', format: 'date-time' },
  user_id: id,
  all_users: { type: 'boolean' },
} as const;

const EventSchema = {
  type: 'object',
  required: ['id', 'seq', 'category', 'type', 'priority', 'data', 'created_at'],
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    category: { type: 'string' },
    type: { type: 'string' },
    priority: { type: 'string' },
    user_id: { type: ['string', 'null'] },
    conversation_id: { type: ['string', 'null'] },
    run_id: { type: ['string', 'null'] },
    correlation_id: { type: ['string', 'null'] },
    data: { type: 'object', additionalProperties: true },
    created_at: { type: 'string' },
  },
} as const;

const SSEStatsResponseSchema = {
  type: 'object',
  title: 'SSEStatsResponse',
  required: ['total_connections', 'your_connections'],
  properties: {
    total_connections: { type: 'integer', description: 'Event streams open on this instance (every user)' },
    your_connections: { type: 'integer', description: 'Your event streams open on this instance' },
    your_events: {
      type: 'object',
      description: 'Your events in the events table: in total, in the last 24 hours, by category and by stored type',
      required: ['total', 'last_24h', 'by_category', 'by_type'],
      properties: {
        total: { type: 'integer' },
        last_24h: { type: 'integer' },
        by_category: { type: 'object', additionalProperties: { type: 'integer' } },
        by_type: { type: 'object', additionalProperties: { type: 'integer' } },
      },
    },
  },
} as const;

const TestEventResponseSchema = {
  type: 'object',
  title: 'TestEventResponse',
  required: ['message', 'event_id'],
  properties: {
    message: { type: 'string' },
    event_id: { type: 'string', description: 'The event’s id (the `id` of its data on the stream)' },
    seq: { type: 'integer', description: 'Its sequence number (the SSE `id:` line)' },
  },
} as const;

/** Test events one user may trigger per minute (every instance counts in the shared store). */
const TEST_EVENTS_PER_MINUTE = 10;

export type EventRoutesOptions = { readonly maxStreamsPerUser?: number };

/**
 * `GET /api/v1/events` (filters, cursor pagination, newest first) and the contract's
 * `GET /api/v1/events/stream` (SSE with the same filters, keep-alive, Last-Event-ID
 * resume, a bounded buffer per connection and a cap on connections per user).
 */
export const eventRoutes: FastifyPluginAsync<EventRoutesOptions> = async (app, options) => {
  const events = createEventsRepository(app.db.pool);
  const hub = new EventStreamHub({ repository: events, logger: app.log, notifier: app.notifier });
  const maxStreams = options.maxStreamsPerUser ?? 5;
  /** This instance's open event streams and whose they are (the stats route counts them). */
  const openStreams = new Map<{ close: () => void }, string>();
  // Open streams would hold the server's close forever (it waits for their connections
  // before onClose hooks run): end them first.
  app.addHook('preClose', async () => {
    for (const stream of openStreams.keys()) stream.close();
  });
  app.addHook('onClose', async () => {
    hub.stop();
  });
  app.addHook('onRequest', app.authenticate);

  const filterOf = async (request: FastifyRequest, query: EventQuery): Promise<EventFilter> => {
    const wantsOthers = query.all_users === true || (query.user_id !== undefined && query.user_id !== request.user.id);
    if (wantsOthers && !request.user.isSuperuser) {
      await app.securityEvents.record(request, { type: 'access_denied', userId: request.user.id, reason: 'events_user_filter' });
      throw new HttpError(403, 'Only superusers may read other users’ events', 'forbidden');
    }
    if (query.since !== undefined && query.until !== undefined && Date.parse(query.until) <= Date.parse(query.since)) {
      throw new HttpError(400, '`until` must be after `since`', 'bad_range');
    }
    return {
      userId: query.all_users === true ? null : (query.user_id ?? request.user.id),
      category: query.category,
      type: query.type,
      correlationId: query.correlation_id,
      runId: query.run_id,
      conversationId: query.conversation_id,
      since: query.since,
      until: query.until,
    };
  };

  app.get<{ Querystring: EventQuery }>(
    '/',
    {
      schema: {
        tags: ['Events'],
        summary: 'List Events',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          properties: {
            ...filterProperties,
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            cursor: { type: 'integer', minimum: 1, maximum: INT8_SAFE_MAX },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['events', 'next_cursor'],
            properties: { events: { type: 'array', items: EventSchema }, next_cursor: { type: ['integer', 'null'] } },
          },
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const filter = await filterOf(request, request.query);
      const limit = request.query.limit ?? 50;
      const rows = await events.list(filter, { limit, before: request.query.cursor });
      return { events: rows, next_cursor: rows.length === limit ? (rows.at(-1)?.seq ?? null) : null };
    },
  );

  app.get<{ Querystring: EventQuery }>(
    '/stream',
    {
      schema: {
        tags: ['Events'],
        summary: 'Event Stream',
        description:
          'Server-Sent Events: `: connected`, then per event `event:` (its type), `id:` (its `seq`: reconnect with ' +
          '`Last-Event-ID`) and one `data:` line `{id, type, data, timestamp, user_id?, metadata}` in the frontend’s ' +
          'shape (dotted types: `workflow.started`, `workflow.completed`, `workflow.failed`, `workflow.status`, ' +
          '`system.alert`, `security.<type>`, …; `metadata` carries seq, category, priority, the stored `event_type` and ' +
          'the run, conversation and correlation ids). The filters take the stored category and type.',
        operationId: 'events_stream_api_v1_events_stream_get',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          properties: { ...filterProperties, last_event_id: { type: 'integer', minimum: 0, maximum: INT8_SAFE_MAX } },
        },
        response: errorResponses(400, 401, 403, 429),
      },
    },
    async (request, reply) => {
      const filter = await filterOf(request, request.query);
      const header = lastEventIdOf(request);
      const lastEventId = header !== undefined && /^\d{1,15}$/.test(header) ? Number(header) : request.query.last_event_id;
      const userId = request.user.id;
      // A lease in the shared limit store: the cap holds across every instance.
      const lease = await app.limits.streams.acquire(`events:${userId}`, maxStreams);
      if (lease === null) {
        await app.securityEvents.record(request, { type: 'rate_limited', userId, reason: 'event_streams' });
        throw new HttpError(429, `At most ${maxStreams} event streams per user`, 'too_many_streams');
      }
      let subscription: { close: () => void } | undefined;
      const stream = openEventStream(reply, {
        resumable: true,
        onClose: () => {
          openStreams.delete(stream);
          subscription?.close();
          lease.release().catch((error: unknown) => request.log.warn({ err: error }, 'stream lease not released'));
        },
      });
      openStreams.set(stream, userId);
      try {
        subscription = await hub.subscribe(
          {
            filter,
            // The frontend's shape; `id:` stays the seq, so Last-Event-ID resumes on any instance.
            deliver: (event) => {
              const shaped = toFrontendEvent(event);
              stream.send(shaped, { event: shaped.type, id: event.seq });
            },
          },
          lastEventId,
        );
        if (stream.closed()) subscription.close();
      } catch (error) {
        request.log.error({ err: error }, 'event stream failed to start');
        stream.close();
      }
      return reply;
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        tags: ['Events'],
        summary: 'Get Sse Stats',
        operationId: 'get_sse_stats_api_v1_events_stats_get',
        description: 'Event streams open on this instance (each instance counts its own) and the caller’s events by category and type.',
        security: bearerSecurity,
        response: { 200: SSEStatsResponseSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const userId = request.user.id;
      const counts = await events.countsFor(userId);
      const byCategory: Record<string, number> = {};
      const byType: Record<string, number> = {};
      for (const row of counts) {
        byCategory[row.category] = (byCategory[row.category] ?? 0) + row.total;
        byType[row.type] = (byType[row.type] ?? 0) + row.total;
      }
      return {
        total_connections: openStreams.size,
        your_connections: [...openStreams.values()].filter((owner) => owner === userId).length,
        your_events: {
          total: counts.reduce((sum, row) => sum + row.total, 0),
          last_24h: counts.reduce((sum, row) => sum + row.last_24h, 0),
          by_category: byCategory,
          by_type: byType,
        },
      };
    },
  );

  app.post(
    '/test-event',
    {
      schema: {
        tags: ['Events'],
        summary: 'Trigger Test Event',
        operationId: 'trigger_test_event_api_v1_events_test_event_post',
        description:
          'Records a `system`/`test_event` event for the caller and announces it, so the caller’s event streams on every ' +
          'instance receive it (as `system.alert`); nobody else’s do. At most 10 per user per minute (429 beyond).',
        security: bearerSecurity,
        response: { 200: TestEventResponseSchema, ...errorResponses(401, 429) },
      },
    },
    async (request, reply) => {
      const userId = request.user.id;
      const key = `test_event:minute:${userId}`;
      const attempt = { id: ulid(), at: app.limits.now() };
      const [window] = await app.limits.store.hit([{ key, windowMs: 60_000, limit: TEST_EVENTS_PER_MINUTE }], attempt);
      if (window !== undefined && window.retryAfterMs > 0) {
        await app.limits.store.unhit([key], attempt);
        void reply.header('retry-after', String(Math.ceil(window.retryAfterMs / 1000)));
        throw new HttpError(429, `At most ${TEST_EVENTS_PER_MINUTE} test events per minute`, 'rate_limited');
      }
      // Committed and announced together: every instance's hub reads it at once.
      const row = await app.notifier.transaction(app.db.pool, async (tx, notify) => {
        const inserted = await insertEvent(tx, {
          id: ulid(),
          category: 'system',
          type: 'test_event',
          priority: 'normal',
          userId,
          correlationId: request.id,
          data: { message: 'This is a test event', test: true, triggered_by: userId },
        });
        notify(EVENTS_CHANNEL, String(inserted.seq));
        return inserted;
      });
      return { message: 'Test event triggered successfully', event_id: row.id, seq: row.seq };
    },
  );
};
