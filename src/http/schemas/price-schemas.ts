/**
 * Schemas of the operators' price routes (`/api/v1/admin/prices`, beyond the contract).
 */

const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;

/** The highest price accepted, USD per 1M tokens (well inside numeric(20, 10)). */
const MAX_PRICE_PER_MTOK = 1_000_000;
const MAX_PAGE = 500;

const provider = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.:-]+$',
  description: 'Provider (`openai`, `anthropic`, `local`, …)',
} as const;
const modelPattern = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  pattern: '^[^\\s]+$',
  description: 'Exact model name, or a glob where `*` matches any run of characters (the most specific pattern wins)',
} as const;
const perMTok = (bucket: string) =>
  ({
    type: 'number',
    minimum: 0,
    maximum: MAX_PRICE_PER_MTOK,
    description: `USD per 1M ${bucket} tokens, at most 4 decimals`,
  }) as const;

export const PriceVersionSchema = {
  type: 'object',
  description: 'One price version.',
  required: [
    'id',
    'provider',
    'model_pattern',
    'valid_from',
    'input_per_mtok',
    'cache_read_per_mtok',
    'cache_write_per_mtok',
    'output_per_mtok',
    'source',
    'active',
    'created_at',
    'created_by',
    'retired_at',
    'retired_by',
  ],
  properties: {
    id: { type: 'string', description: 'Price id, recorded on every model call costed with it' },
    provider: { type: 'string' },
    model_pattern: { type: 'string' },
    valid_from: { type: 'string', format: 'date-time', description: 'Calls that start at or after this are costed with it' },
    input_per_mtok: { type: 'number', description: 'USD per 1M uncached input tokens' },
    cache_read_per_mtok: { type: 'number', description: 'USD per 1M cache-read input tokens' },
    cache_write_per_mtok: { type: 'number', description: 'USD per 1M cache-write input tokens' },
    output_per_mtok: { type: 'number', description: 'USD per 1M output tokens (reasoning included)' },
    source: { type: 'string', enum: ['shipped', 'operator'], description: '`shipped` with the service, or added by an operator' },
    active: { type: 'boolean', description: 'Not retired' },
    created_at: { type: 'string', format: 'date-time' },
    created_by: { ...nullable({ type: 'string' }), description: 'The operator who added it (null: shipped)' },
    retired_at: { ...nullable({ type: 'string', format: 'date-time' }), description: 'When it was retired (null: active)' },
    retired_by: { ...nullable({ type: 'string' }), description: 'The operator who retired it' },
  },
} as const;

export const PriceListQuerySchema = {
  type: 'object',
  properties: {
    provider,
    model_pattern: modelPattern,
    source: { type: 'string', enum: ['shipped', 'operator'] },
    status: { type: 'string', enum: ['active', 'retired', 'all'], default: 'all', description: 'Retired versions, active ones, or both' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
  },
} as const;

export type PriceListQuery = {
  provider?: string;
  model_pattern?: string;
  source?: 'shipped' | 'operator';
  status: 'active' | 'retired' | 'all';
  limit: number;
  offset: number;
};

export const PriceListResponseSchema = {
  type: 'object',
  required: ['prices', 'total_count', 'limit', 'offset'],
  properties: {
    prices: { type: 'array', items: PriceVersionSchema },
    total_count: { type: 'integer' },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
  },
} as const;

export const PriceCreateBodySchema = {
  type: 'object',
  required: ['provider', 'model_pattern', 'input_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'output_per_mtok'],
  properties: {
    provider,
    model_pattern: modelPattern,
    valid_from: {
      type: 'string',
      format: 'date-time',
      description: 'From when the price applies (default: now); earlier to correct a past price',
    },
    input_per_mtok: perMTok('uncached input'),
    cache_read_per_mtok: perMTok('cache-read input'),
    cache_write_per_mtok: perMTok('cache-write input'),
    output_per_mtok: perMTok('output'),
  },
} as const;

export type PriceCreateBody = {
  provider: string;
  model_pattern: string;
  valid_from?: string;
  input_per_mtok: number;
  cache_read_per_mtok: number;
  cache_write_per_mtok: number;
  output_per_mtok: number;
};

export const PriceParamsSchema = {
  type: 'object',
  required: ['price_id'],
  properties: { price_id: { type: 'string', minLength: 1, maxLength: 256, description: 'Price id' } },
} as const;
export type PriceParams = { price_id: string };

export const RecomputeBodySchema = {
  type: 'object',
  required: ['provider', 'model', 'from', 'to'],
  properties: {
    provider,
    model: { type: 'string', minLength: 1, maxLength: 200, description: 'The model name the calls were made with (exact)' },
    from: { type: 'string', format: 'date-time', description: 'Calls that started at or after this' },
    to: { type: 'string', format: 'date-time', description: 'and before this' },
  },
} as const;

export type RecomputeBody = { provider: string; model: string; from: string; to: string };

const decimal = (description: string) => ({ type: 'string', pattern: '^-?\\d+\\.\\d{10}$', description }) as const;

export const RecomputeResponseSchema = {
  type: 'object',
  required: [
    'provider',
    'model',
    'from',
    'to',
    'model_calls_examined',
    'model_calls_changed',
    'model_calls_unpriced',
    'runs_changed',
    'messages_changed',
    'conversations_changed',
    'users_changed',
    'rollup_rows_changed',
    'cost_before_usd',
    'cost_after_usd',
    'difference_usd',
    'price_ids',
    'event_id',
  ],
  properties: {
    provider: { type: 'string' },
    model: { type: 'string' },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    model_calls_examined: { type: 'integer', description: 'Calls in the window that reported usage' },
    model_calls_changed: { type: 'integer', description: 'Calls whose cost or price version changed' },
    model_calls_unpriced: { type: 'integer', description: 'Calls with no price known now, left as they were' },
    runs_changed: { type: 'integer' },
    messages_changed: { type: 'integer' },
    conversations_changed: { type: 'integer' },
    users_changed: { type: 'integer' },
    rollup_rows_changed: { type: 'integer', description: 'Hourly per-user analytics rows (their all-users sums move with them)' },
    cost_before_usd: decimal('The examined calls’ cost before (exact decimal, USD)'),
    cost_after_usd: decimal('and after'),
    difference_usd: decimal('after − before'),
    price_ids: { type: 'array', items: { type: 'string' }, description: 'The versions the changed calls are costed with now' },
    event_id: { type: 'string', description: 'The `admin`/`prices_recomputed` event' },
  },
} as const;
