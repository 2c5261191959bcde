import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError, RequestValidationError, type ValidationItem } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import {
  PriceCreateBodySchema,
  PriceListQuerySchema,
  PriceListResponseSchema,
  PriceParamsSchema,
  PriceVersionSchema,
  RecomputeBodySchema,
  RecomputeResponseSchema,
  type PriceCreateBody,
  type PriceListQuery,
  type PriceParams,
  type RecomputeBody,
} from '../http/schemas/price-schemas.js';
import { PriceRowSchema } from '../providers/pricing.js';
import {
  MAX_RECOMPUTE_CALLS,
  recomputeCosts,
  recomputeFields,
  RecomputeWindowTooLargeError,
} from '../repositories/cost-recompute-repository.js';
import { createPricesRepository, type PriceVersionRow } from '../repositories/prices-repository.js';
import type { Services } from '../services.js';

/** The zod price row's fields under their names in the request body. */
const BODY_FIELDS: Record<string, string> = {
  provider: 'provider',
  modelPattern: 'model_pattern',
  validFrom: 'valid_from',
  inputPerMTok: 'input_per_mtok',
  cacheReadPerMTok: 'cache_read_per_mtok',
  cacheWritePerMTok: 'cache_write_per_mtok',
  outputPerMTok: 'output_per_mtok',
};

const presentPrice = (row: PriceVersionRow) => ({ ...row, active: row.retired_at === null });

/**
 * `/api/v1/admin/prices`: the operators' price list. Superusers list every version
 * (shipped and operator, retired ones included), add operator versions, retire them, and
 * recompute the stored costs of a window of calls under the prices valid now. Anyone
 * else gets 403 and an `access_denied` security event, like every superuser-only query.
 * Each change reloads this instance's price book at once; other instances pick it up at
 * their next periodic reload.
 */
export const adminPriceRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const prices = createPricesRepository(app.db.pool);

  app.addHook('onRequest', app.authenticate);
  // Before validation: a non-superuser learns nothing about what a valid body is.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!request.user.isSuperuser) {
      await app.securityEvents.record(request, { type: 'access_denied', userId: request.user.id, reason: 'admin_requires_superuser' });
      throw new HttpError(403, 'Only superusers may manage prices', 'forbidden');
    }
  });

  const reloadPrices = async (request: FastifyRequest): Promise<void> => {
    try {
      await services.prices.reload();
    } catch (error) {
      // The change is committed; the periodic reload picks it up.
      request.log.warn({ err: error }, 'price reload after a change failed');
    }
  };

  app.get<{ Querystring: PriceListQuery }>(
    '/',
    {
      schema: {
        tags: ['Admin'],
        summary: 'List Prices',
        description:
          'Every price version (USD per 1M tokens per bucket), by provider, pattern and newest `valid_from` first. ' +
          'Operator rows override shipped ones for the models they match; retired rows price nothing.',
        operationId: 'list_prices_api_v1_admin_prices_get',
        security: bearerSecurity,
        querystring: PriceListQuerySchema,
        response: { 200: PriceListResponseSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const query = request.query;
      const { rows, total } = await prices.list(
        { provider: query.provider, modelPattern: query.model_pattern, source: query.source, status: query.status },
        { limit: query.limit, offset: query.offset },
      );
      return { prices: rows.map(presentPrice), total_count: total, limit: query.limit, offset: query.offset };
    },
  );

  app.post<{ Body: PriceCreateBody }>(
    '/',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Add Price',
        description:
          'Adds an operator price version, valid from `valid_from` (default now). Calls made from then on are costed ' +
          'with it; costs already stored change only through a recompute.',
        operationId: 'add_price_api_v1_admin_prices_post',
        security: bearerSecurity,
        body: PriceCreateBodySchema,
        response: { 201: PriceVersionSchema, ...errorResponses(401, 403, 409, 413) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const candidate = {
        id: 'new',
        provider: body.provider,
        modelPattern: body.model_pattern,
        validFrom: body.valid_from ?? new Date().toISOString(),
        inputPerMTok: body.input_per_mtok,
        cacheReadPerMTok: body.cache_read_per_mtok,
        cacheWritePerMTok: body.cache_write_per_mtok,
        outputPerMTok: body.output_per_mtok,
      };
      // The shipped list's own rules (e.g. at most 4 decimals: units of $0.0001 per 1M tokens).
      const parsed = PriceRowSchema.safeParse(candidate);
      if (!parsed.success) {
        throw new RequestValidationError(
          parsed.error.issues.map((issue): ValidationItem => ({
            loc: ['body', BODY_FIELDS[String(issue.path[0])] ?? String(issue.path[0])],
            msg: issue.message,
            type: 'value_error',
          })),
        );
      }
      const { id: _id, ...price } = parsed.data;
      const row = await prices.addOperatorPrice(price, { userId: request.user.id, correlationId: request.id });
      if (row === null) {
        throw new HttpError(409, 'An active operator price with this provider, model pattern and valid_from exists', 'price_exists');
      }
      await reloadPrices(request);
      return reply.status(201).send(presentPrice(row));
    },
  );

  app.post<{ Params: PriceParams }>(
    '/:price_id/retire',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Retire Price',
        description:
          'Retires an operator price version: from now on it prices nothing (calls fall back to the next matching ' +
          'version), but the row stays, and so do the costs already computed with it, until a recompute.',
        operationId: 'retire_price_api_v1_admin_prices__price_id__retire_post',
        security: bearerSecurity,
        params: PriceParamsSchema,
        response: { 200: PriceVersionSchema, ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request) => {
      const outcome = await prices.retire(request.params.price_id, { userId: request.user.id, correlationId: request.id });
      switch (outcome.kind) {
        case 'not_found':
          throw new HttpError(404, 'Price not found', 'not_found');
        case 'shipped':
          throw new HttpError(409, 'Shipped prices cannot be retired: add an operator price to override them', 'price_shipped');
        case 'already_retired':
          throw new HttpError(409, 'This price is already retired', 'price_retired');
        case 'retired':
          await reloadPrices(request);
          return presentPrice(outcome.row);
      }
    },
  );

  app.post<{ Body: RecomputeBody }>(
    '/recompute',
    {
      schema: {
        tags: ['Admin'],
        summary: 'Recompute Costs',
        description:
          'Recomputes the stored cost of the calls to `provider`/`model` that started in [`from`, `to`) under the ' +
          'prices valid now, from their stored tokens, and moves the runs, messages, conversation and user totals and ' +
          'analytics rollups by exactly the difference, in one transaction; records a `prices_recomputed` event. ' +
          'Idempotent. Calls without usage or without a price now are left as they are. ' +
          `At most ${MAX_RECOMPUTE_CALLS} calls per recompute.`,
        operationId: 'recompute_costs_api_v1_admin_prices_recompute_post',
        security: bearerSecurity,
        body: RecomputeBodySchema,
        response: { 200: RecomputeResponseSchema, ...errorResponses(401, 403, 413) },
      },
    },
    async (request) => {
      const body = request.body;
      const from = new Date(body.from);
      const to = new Date(body.to);
      if (!(to.getTime() > from.getTime())) {
        throw new RequestValidationError([{ loc: ['body', 'to'], msg: '`to` must be after `from`', type: 'value_error' }]);
      }
      try {
        const summary = await recomputeCosts(app.db.pool, {
          provider: body.provider,
          model: body.model,
          from,
          to,
          userId: request.user.id,
          correlationId: request.id,
        });
        return { ...recomputeFields(summary), event_id: summary.eventId };
      } catch (error) {
        if (error instanceof RecomputeWindowTooLargeError) {
          throw new RequestValidationError([{ loc: ['body', 'to'], msg: error.message, type: 'value_error' }]);
        }
        throw error;
      }
    },
  );
};
