import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { FeedSubscription } from '../analytics/analytics-feed.js';
import { createAnalyticsReports, type AnalyticsScope } from '../analytics/analytics-reports.js';
import { resolveAnalyticsWindow, type AnalyticsWindow } from '../analytics/analytics-window.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import {
  AnalyticsQuerySchema,
  AnalyticsStreamQuerySchema,
  type AnalyticsQuery,
  type AnalyticsStreamQuery,
} from '../http/schemas/analytics-schemas.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { openEventStream, type EventStream } from '../http/sse.js';
import type { Services } from '../services.js';
import { registerDashboardRoutes } from './analytics-dashboard.js';

export type AnalyticsRoutesOptions = {
  readonly services: Services;
  /** Live streams one user may hold open at once; one more answers 429 (default 5). */
  readonly maxStreamsPerUser?: number;
  /** Interval of the keep-alive comments on live streams (default 15 s). */
  readonly keepAliveMs?: number;
  /** The clock (tests). */
  readonly now?: () => number;
};

const DEFAULT_MAX_STREAMS_PER_USER = 5;
/** Announces "end this user's live analytics streams" (payload: the user id) to every instance. */
const ANALYTICS_STOP_CHANNEL = 'chatter_analytics_stop';
const DEFAULT_KEEP_ALIVE_MS = 15_000;

/** The contract's report routes: path, body schema, summary and operationId. */
const REPORTS = [
  {
    path: '/usage',
    schema: 'UsageMetricsResponse',
    summary: 'Get Usage Metrics',
    operationId: 'get_usage_metrics_api_v1_analytics_usage_get',
  },
  {
    path: '/performance',
    schema: 'PerformanceMetricsResponse',
    summary: 'Get Performance Metrics',
    operationId: 'get_performance_metrics_api_v1_analytics_performance_get',
  },
  {
    path: '/conversations',
    schema: 'ConversationStatsResponse',
    summary: 'Get Conversation Stats',
    operationId: 'get_conversation_stats_api_v1_analytics_conversations_get',
  },
  {
    path: '/dashboard',
    schema: 'DashboardResponse',
    summary: 'Get Dashboard',
    operationId: 'get_dashboard_api_v1_analytics_dashboard_get',
  },
] as const;

/**
 * Sends a feed subscription on an event stream: one `event: run_completed` block with
 * `id:` (the run id) per event, and an `event: dropped` block (`{"dropped": n}`) before
 * the next event when the subscriber's bounded queue lost events. Waits for the socket to
 * drain after each event, so a slow client's backlog stays in the feed's bounded queue,
 * not in socket buffers. Resolves once the subscription is closed or the stream is.
 */
export const streamFeedEvents = async (stream: EventStream, subscription: FeedSubscription): Promise<void> => {
  let reportedDrops = 0;
  while (!stream.closed()) {
    const next = await subscription.next();
    if (next.done === true) return;
    const dropped = subscription.dropped();
    if (dropped > reportedDrops) {
      stream.send({ dropped: dropped - reportedDrops }, { event: 'dropped' });
      reportedDrops = dropped;
    }
    stream.send(next.value, { event: next.value.type, id: next.value.run_id });
    await stream.drained();
  }
};

/**
 * `/api/v1/analytics/*`: usage, performance, conversation statistics and the dashboard
 * in the contract's shapes, read from the hourly analytics rollups (never by scanning
 * messages), and `GET /stream`, the live feed of finished runs as Server-Sent Events.
 *
 * Everyone sees their own figures; superusers may pass `user_id` (one user) or
 * `all_users=true`. Anyone else asking for that gets 403 and an `access_denied`
 * security event.
 */
export const analyticsRoutes: FastifyPluginAsync<AnalyticsRoutesOptions> = async (app, options) => {
  const { services } = options;
  const now = options.now ?? Date.now;
  const maxStreamsPerUser = options.maxStreamsPerUser ?? DEFAULT_MAX_STREAMS_PER_USER;
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  const reports = createAnalyticsReports(app.db.pool);
  /** This instance's live feed subscriptions and whose they are. */
  const subscriptions = new Map<FeedSubscription, string>();
  // Listens for stop requests once this instance has served a live stream (none before, no connection).
  let listening: Promise<() => void> | undefined;
  const listenForStops = () => {
    listening ??= app.notifier.listen(ANALYTICS_STOP_CHANNEL, (userId) => {
      for (const [subscription, owner] of subscriptions) if (owner === userId) subscription.close();
    });
  };
  app.addHook('onClose', async () => {
    const stop = await listening;
    stop?.();
  });

  app.addHook('onRequest', app.authenticate);
  // Open streams would hold the server's close forever: end them first.
  app.addHook('preClose', async () => {
    for (const subscription of subscriptions.keys()) subscription.close();
  });

  /** Whose figures the request reads; 403 (and a security event) for a non-superuser asking for others'. */
  const scopeOf = async (request: FastifyRequest, query: { user_id?: string; all_users: boolean }): Promise<AnalyticsScope> => {
    const { user } = request;
    const wantsOthers = query.all_users || (query.user_id !== undefined && query.user_id !== user.id);
    if (wantsOthers && !user.isSuperuser) {
      await app.securityEvents.record(request, {
        type: 'access_denied',
        userId: user.id,
        reason: 'analytics_scope_requires_superuser',
        details: query.all_users ? { all_users: true } : { requested_user_id: query.user_id ?? null },
      });
      throw new HttpError(403, 'Only superusers may read other users’ analytics', 'forbidden');
    }
    if (query.all_users && query.user_id !== undefined) {
      throw new RequestValidationError([
        { loc: ['query', 'all_users'], msg: 'all_users and user_id cannot be combined', type: 'value_error' },
      ]);
    }
    if (!wantsOthers) {
      return { userId: user.id };
    }
    return query.all_users ? { allUsers: true } : { userId: query.user_id ?? user.id };
  };

  const prepare = async (
    request: FastifyRequest<{ Querystring: AnalyticsQuery }>,
  ): Promise<{ scope: AnalyticsScope; window: AnalyticsWindow }> => {
    const scope = await scopeOf(request, request.query);
    // No flush needed: a run's rollups commit in its record's transaction, before its chat answers.
    const window = resolveAnalyticsWindow(request.query, now());
    return { scope, window };
  };

  const handlers = {
    '/usage': async (scope: AnalyticsScope, window: AnalyticsWindow) => reports.usage(scope, window),
    '/performance': async (scope: AnalyticsScope, window: AnalyticsWindow) => reports.performance(scope, window),
    '/conversations': async (scope: AnalyticsScope, window: AnalyticsWindow) => reports.conversationStats(scope, window),
    '/dashboard': async (scope: AnalyticsScope, window: AnalyticsWindow) => reports.dashboard(scope, window, now()),
  } as const;

  for (const report of REPORTS) {
    app.get<{ Querystring: AnalyticsQuery }>(
      report.path,
      {
        schema: {
          tags: ['Analytics'],
          summary: report.summary,
          operationId: report.operationId,
          security: bearerSecurity,
          querystring: AnalyticsQuerySchema,
          response: { 200: { $ref: `${report.schema}#` }, ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        const { scope, window } = await prepare(request);
        return handlers[report.path](scope, window);
      },
    );
  }

  registerDashboardRoutes(app, {
    services,
    reports,
    prepare,
    now,
    stopStreamsOf: async (userId) => {
      // Delivered to every instance (this one included) once committed.
      await app.notifier.transaction(app.db.pool, async (_tx, notify) => notify(ANALYTICS_STOP_CHANNEL, userId));
    },
  });

  app.get<{ Querystring: AnalyticsStreamQuery }>(
    '/stream',
    {
      schema: {
        tags: ['Analytics'],
        summary: 'Stream Analytics',
        description:
          'Server-Sent Events: `: connected`, then `event: run_completed` with `id:` (the run id) and `data:` ' +
          '(tokens, cost, duration, status) for each run of the caller (superusers: `all_users=true` or `user_id`) as it ' +
          'finishes; `: keep-alive` comments every 15 s; `event: dropped` when a slow client lost events.',
        operationId: 'stream_analytics_api_v1_analytics_stream_get',
        security: bearerSecurity,
        querystring: AnalyticsStreamQuerySchema,
        response: errorResponses(401, 403, 429),
      },
    },
    async (request, reply) => {
      const scope = await scopeOf(request, request.query);
      const userId = request.user.id;
      // A lease in the shared limit store: the cap holds across every instance.
      const lease = await app.limits.streams.acquire(`analytics:${userId}`, maxStreamsPerUser);
      if (lease === null) {
        await app.securityEvents.record(request, { type: 'rate_limited', userId, reason: 'analytics_streams' });
        throw new HttpError(429, `At most ${maxStreamsPerUser} live analytics streams per user`, 'too_many_streams');
      }
      const subscription = services.analyticsFeed.subscribe(scope);
      subscriptions.set(subscription, userId);
      listenForStops();
      // The client going away closes the subscription, which ends the loop.
      const stream = openEventStream(reply, { keepAliveMs, onClose: () => subscription.close() });
      try {
        await streamFeedEvents(stream, subscription);
      } finally {
        subscription.close();
        stream.close();
        subscriptions.delete(subscription);
        await lease.release().catch((error: unknown) => request.log.warn({ err: error }, 'stream lease not released'));
      }
      return reply;
    },
  );
};
