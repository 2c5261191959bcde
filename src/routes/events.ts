import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { EventStreamHub } from '../events/event-stream-hub.js';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT8_SAFE_MAX } from '../http/schemas/common-schemas.js';
import { lastEventIdOf, openEventStream } from '../http/sse.js';
import { createEventsRepository, type EventFilter } from '../repositories/events-repository.js';

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
  const openStreams = new Set<{ close: () => void }>();
  // Open streams would hold the server's close forever (it waits for their connections
  // before onClose hooks run): end them first.
  app.addHook('preClose', async () => {
    for (const stream of openStreams) stream.close();
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
      openStreams.add(stream);
      try {
        subscription = await hub.subscribe(
          { filter, deliver: (event) => void stream.send(event, { event: event.type, id: event.seq }) },
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
};
