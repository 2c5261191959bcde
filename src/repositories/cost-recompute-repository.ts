import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { decimalToUnits, unitsToDecimal } from '../../machines/usage.js';
import { emptyRollup, hourBucket, rollupKey, type Rollup } from '../analytics/analytics-rollup.js';
import { applyRollups } from '../analytics/analytics-upsert.js';
import { computeCostUnits } from '../providers/pricing.js';
import { createPriceBook } from '../runtime/price-book.js';
import { insertAdminEvent } from './admin-events.js';
import { loadPrices } from './prices-repository.js';
import { usageOfCallRow } from './run-records-repository.js';

/** The model calls one recompute may touch: a larger window is refused (split it). */
export const MAX_RECOMPUTE_CALLS = 100_000;

/** Every recompute takes this transaction lock: two recomputes never interleave. */
const RECOMPUTE_LOCK = sql.fragment`hashtext('chatter.price-recompute')`;

export type RecomputeRequest = {
  readonly provider: string;
  /** The model name calls were made with (`model_calls.request_model`, what the price was looked up by). */
  readonly model: string;
  /** Calls that started at or after `from` and before `to`. */
  readonly from: Date;
  readonly to: Date;
  /** The operator asking (the event's user). */
  readonly userId: string;
  readonly correlationId: string;
};

export type RecomputeSummary = {
  readonly provider: string;
  readonly model: string;
  readonly from: string;
  readonly to: string;
  /** Calls in the window that reported usage (calls without usage have no cost to recompute). */
  readonly modelCallsExamined: number;
  readonly modelCallsChanged: number;
  /** Calls for which no price is known now: left as they were. */
  readonly modelCallsUnpriced: number;
  readonly runsChanged: number;
  readonly messagesChanged: number;
  readonly conversationsChanged: number;
  readonly usersChanged: number;
  readonly rollupRowsChanged: number;
  /** The examined calls' cost before and after, and the difference (exact decimals, USD). */
  readonly costBeforeUsd: string;
  readonly costAfterUsd: string;
  readonly differenceUsd: string;
  /** The price versions the changed calls are costed with now. */
  readonly priceIds: readonly string[];
  readonly eventId: string;
};

/** The window holds more model calls than one recompute takes. */
export class RecomputeWindowTooLargeError extends Error {
  public constructor(public readonly calls: number) {
    super(`the window holds more than ${MAX_RECOMPUTE_CALLS} model calls; recompute shorter windows`);
    this.name = 'RecomputeWindowTooLargeError';
  }
}

const CallRow = z.object({
  id: z.string(),
  run_id: z.string(),
  user_id: z.string(),
  started_at: z.string(),
  latency_ms: z.number().int().nullable(),
  input_tokens: z.number().int(),
  cache_read_tokens: z.number().int().nullable(),
  cache_write_tokens: z.number().int().nullable(),
  output_tokens: z.number().int().nullable(),
  reasoning_tokens: z.number().int().nullable(),
  cost: z.string().nullable(),
  price_id: z.string().nullable(),
});
type CallRow = z.infer<typeof CallRow>;

const MessageDelta = z.object({
  id: z.string(),
  conversation_id: z.string(),
  user_id: z.string(),
  old_cost: z.string().nullable(),
  new_cost: z.string().nullable(),
});

type ChangedCall = { readonly call: CallRow; readonly oldUnits: bigint | null; readonly newUnits: bigint; readonly priceId: string };

const sumUnits = (units: Iterable<bigint>): bigint => {
  let total = 0n;
  for (const value of units) total += value;
  return total;
};

/** Adds `delta` to `key` of a map of per-key sums. */
const addTo = (sums: Map<string, bigint>, key: string, delta: bigint): void => {
  sums.set(key, (sums.get(key) ?? 0n) + delta);
};

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The changed calls' rollup rows, carrying only the cost difference (every count 0), in key order. */
const costRollups = (changed: readonly ChangedCall[], provider: string, model: string): Rollup[] => {
  const rollups = new Map<string, Rollup>();
  for (const { call, oldUnits, newUnits } of changed) {
    // The hour the analytics writer put the call in: its end (src/analytics/run-record-rollups.ts).
    const bucket = hourBucket(Date.parse(call.started_at) + (call.latency_ms ?? 0));
    const key = rollupKey(bucket, call.user_id, provider, model);
    let rollup = rollups.get(key);
    if (rollup === undefined) {
      rollup = emptyRollup(bucket, call.user_id, provider, model);
      rollups.set(key, rollup);
    }
    rollup.costUnits += newUnits - (oldUnits ?? 0n);
  }
  return [...rollups.values()]
    .filter((rollup) => rollup.costUnits !== 0n)
    .sort((a, b) => a.bucketStart - b.bucketStart || compareText(a.userId, b.userId));
};

/** The calls' new costs under the prices valid now, and those that change. */
const priceCalls = async (tx: DatabaseTransactionConnection, calls: readonly CallRow[], request: RecomputeRequest) => {
  const { shipped, operator } = await loadPrices(tx);
  const book = createPriceBook(shipped, operator);
  const changed: ChangedCall[] = [];
  let unpriced = 0;
  let before = 0n;
  let after = 0n;
  for (const call of calls) {
    const oldUnits = call.cost === null ? null : decimalToUnits(call.cost);
    before += oldUnits ?? 0n;
    // The same lookup as the runtime's: provider and requested model, at the call's start.
    const price = book.find(request.provider, request.model, new Date(call.started_at));
    // Only calls with usage are selected; one whose row holds no output count keeps its cost.
    const usage = usageOfCallRow(call);
    if (price === null || usage === null) {
      unpriced += price === null ? 1 : 0;
      after += oldUnits ?? 0n;
      continue;
    }
    const newUnits = computeCostUnits(usage, price);
    after += newUnits;
    if (newUnits !== oldUnits || price.id !== call.price_id) {
      changed.push({ call, oldUnits, newUnits, priceId: price.id });
    }
  }
  return { changed, unpriced, before, after };
};

/**
 * Runs, messages, conversation and user totals after the calls changed: each run's cost
 * is again the sum over its calls (NULL when a call with usage has no price, as the
 * runtime records it), its assistant message carries that cost, and the conversations'
 * and users' totals move by exactly the messages' differences. Rows are locked in the
 * order the run-record writer locks them (conversations, then users, each by id).
 */
const propagateToRuns = async (tx: DatabaseTransactionConnection, runIds: readonly string[]) => {
  const runsChanged = await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
    WITH sums AS (
      SELECT run_id, coalesce(sum(cost), 0) AS cost, bool_or(input_tokens IS NOT NULL AND cost IS NULL) AS unknown
      FROM model_calls WHERE run_id = ANY(${sql.array([...runIds], 'text')})
      GROUP BY run_id
    )
    UPDATE workflow_runs r
    SET cost = CASE WHEN s.unknown THEN NULL ELSE s.cost END, cost_unknown = s.unknown
    FROM sums s
    WHERE r.id = s.run_id
      AND (r.cost IS DISTINCT FROM (CASE WHEN s.unknown THEN NULL ELSE s.cost END) OR r.cost_unknown <> s.unknown)
    RETURNING r.id`);
  if (runsChanged.length === 0) {
    return { runs: 0, messages: 0, conversations: 0, users: 0 };
  }
  const messages = await tx.any(sql.type(MessageDelta)`
    SELECT m.id, m.conversation_id, r.user_id, m.cost::text AS old_cost, r.cost::text AS new_cost
    FROM messages m JOIN workflow_runs r ON r.id = m.run_id
    WHERE m.run_id = ANY(${sql.array([...runsChanged], 'text')}) AND m.role = 'assistant'
      AND m.cost IS DISTINCT FROM r.cost
    ORDER BY m.id`);
  const byConversation = new Map<string, bigint>();
  const byUser = new Map<string, bigint>();
  for (const message of messages) {
    // A conversation or user total counts a message without a cost as 0 (the writer's rule).
    const delta =
      (message.new_cost === null ? 0n : decimalToUnits(message.new_cost)) -
      (message.old_cost === null ? 0n : decimalToUnits(message.old_cost));
    addTo(byConversation, message.conversation_id, delta);
    addTo(byUser, message.user_id, delta);
  }
  const conversations = [...byConversation].filter(([, delta]) => delta !== 0n).sort(([a], [b]) => compareText(a, b));
  const users = [...byUser].filter(([, delta]) => delta !== 0n).sort(([a], [b]) => compareText(a, b));
  if (conversations.length > 0) {
    await tx.query(sql.unsafe`
      SELECT id FROM conversations WHERE id = ANY(${sql.array(
        conversations.map(([id]) => id),
        'text',
      )})
      ORDER BY id FOR UPDATE`);
  }
  if (messages.length > 0) {
    await tx.query(sql.unsafe`
      UPDATE messages m
      SET cost = r.cost,
          extra_metadata = jsonb_set(coalesce(m.extra_metadata, '{}'::jsonb), '{cost_unknown}', to_jsonb(r.cost_unknown))
      FROM workflow_runs r
      WHERE m.id = ANY(${sql.array(
        messages.map((message) => message.id),
        'text',
      )}) AND r.id = m.run_id`);
  }
  if (conversations.length > 0) {
    await tx.query(sql.unsafe`
      UPDATE conversations c SET total_cost = c.total_cost + v.delta
      FROM (SELECT * FROM ${sql.unnest(
        conversations.map(([id, delta]) => [id, unitsToDecimal(delta)]),
        ['text', 'numeric'],
      )} AS t(id, delta)) AS v
      WHERE c.id = v.id`);
  }
  if (users.length > 0) {
    await tx.query(sql.unsafe`
      UPDATE users u SET total_cost = u.total_cost + v.delta
      FROM (SELECT * FROM ${sql.unnest(
        users.map(([id, delta]) => [id, unitsToDecimal(delta)]),
        ['text', 'numeric'],
      )} AS t(id, delta) ORDER BY id) AS v
      WHERE u.id = v.id`);
  }
  return { runs: runsChanged.length, messages: messages.length, conversations: conversations.length, users: users.length };
};

/**
 * Recomputes the stored cost of one provider's and model's calls in a time window under
 * the prices valid now (operator rows first, retired rows ignored), from each call's
 * stored token buckets, with the cost function every run is costed with. In ONE
 * transaction: the calls' cost and price id, their runs, the runs' assistant messages,
 * the conversations' and users' totals and the hourly analytics rollups (per user and
 * summed) move by exactly the difference, and an `admin`/`prices_recomputed` event
 * records the counts and the difference. Idempotent: a second recompute under the same
 * prices finds nothing to change (and records an event saying so). Calls without usage,
 * and calls for which no price is known now, are left as they are.
 * @throws RecomputeWindowTooLargeError when the window holds more than MAX_RECOMPUTE_CALLS calls.
 */
/** A recompute's figures as the API and its event show them (snake_case). */
export const recomputeFields = (summary: Omit<RecomputeSummary, 'eventId'>) => ({
  provider: summary.provider,
  model: summary.model,
  from: summary.from,
  to: summary.to,
  model_calls_examined: summary.modelCallsExamined,
  model_calls_changed: summary.modelCallsChanged,
  model_calls_unpriced: summary.modelCallsUnpriced,
  runs_changed: summary.runsChanged,
  messages_changed: summary.messagesChanged,
  conversations_changed: summary.conversationsChanged,
  users_changed: summary.usersChanged,
  rollup_rows_changed: summary.rollupRowsChanged,
  cost_before_usd: summary.costBeforeUsd,
  cost_after_usd: summary.costAfterUsd,
  difference_usd: summary.differenceUsd,
  price_ids: [...summary.priceIds],
});

export const recomputeCosts = async (pool: DatabasePool, request: RecomputeRequest): Promise<RecomputeSummary> =>
  pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(${RECOMPUTE_LOCK})`);
    const calls = await tx.any(sql.type(CallRow)`
      SELECT c.id, c.run_id, r.user_id, c.started_at, c.latency_ms, c.input_tokens, c.cache_read_tokens,
             c.cache_write_tokens, c.output_tokens, c.reasoning_tokens, c.cost::text AS cost, c.price_id
      FROM model_calls c JOIN workflow_runs r ON r.id = c.run_id
      WHERE c.provider = ${request.provider} AND c.request_model = ${request.model}
        AND c.started_at >= ${sql.timestamp(request.from)} AND c.started_at < ${sql.timestamp(request.to)}
        AND c.input_tokens IS NOT NULL
      ORDER BY c.id
      LIMIT ${MAX_RECOMPUTE_CALLS + 1}
      FOR UPDATE OF c`);
    if (calls.length > MAX_RECOMPUTE_CALLS) {
      throw new RecomputeWindowTooLargeError(calls.length);
    }
    const { changed, unpriced, before, after } = await priceCalls(tx, calls, request);
    if (changed.length > 0) {
      await tx.query(sql.unsafe`
        UPDATE model_calls c SET cost = v.cost, price_id = v.price_id
        FROM (SELECT * FROM ${sql.unnest(
          changed.map(({ call, newUnits, priceId }) => [call.id, unitsToDecimal(newUnits), priceId]),
          ['text', 'numeric', 'text'],
        )} AS t(id, cost, price_id)) AS v
        WHERE c.id = v.id`);
    }
    const runIds = [...new Set(changed.map(({ call }) => call.run_id))].sort(compareText);
    const propagated = runIds.length === 0 ? { runs: 0, messages: 0, conversations: 0, users: 0 } : await propagateToRuns(tx, runIds);
    const rollups = costRollups(changed, request.provider, request.model);
    if (rollups.length > 0) {
      await applyRollups(tx, rollups);
    }
    const summary: Omit<RecomputeSummary, 'eventId'> = {
      provider: request.provider,
      model: request.model,
      from: request.from.toISOString(),
      to: request.to.toISOString(),
      modelCallsExamined: calls.length,
      modelCallsChanged: changed.length,
      modelCallsUnpriced: unpriced,
      runsChanged: propagated.runs,
      messagesChanged: propagated.messages,
      conversationsChanged: propagated.conversations,
      usersChanged: propagated.users,
      rollupRowsChanged: rollups.length,
      costBeforeUsd: unitsToDecimal(before),
      costAfterUsd: unitsToDecimal(after),
      differenceUsd: unitsToDecimal(sumUnits(changed.map(({ oldUnits, newUnits }) => newUnits - (oldUnits ?? 0n)))),
      priceIds: [...new Set(changed.map(({ priceId }) => priceId))].sort(compareText),
    };
    const eventId = await insertAdminEvent(tx, {
      type: 'prices_recomputed',
      userId: request.userId,
      correlationId: request.correlationId,
      data: recomputeFields(summary),
    });
    return { ...summary, eventId };
  });
