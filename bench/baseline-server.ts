import { parseArgs } from 'node:util';
import { AIMessage, HumanMessage, type BaseMessage } from '@langchain/core/messages';
import Fastify from 'fastify';
import pg from 'pg';
import { ulid } from 'ulid';
import { addUsage, promptTokens, totalTokens, zeroUsage, type Usage } from '../machines/usage.js';
import { AccessTokenError, createAccessTokens } from '../src/auth/access-tokens.js';
import { createGraph } from '../src/graphs/build-graph.js';
import { getTemplate } from '../src/graphs/templates.js';
import { LOCAL_DEFAULT_MODEL, LocalChatModel } from '../src/providers/local-chat-model.js';
import { computeCostUnits, findPrice, loadShippedPrices } from '../src/providers/pricing.js';
import { normalizeUsage } from '../src/providers/usage.js';
import { createToolRegistry } from '../src/tools/tool-registry.js';

/**
 * The hand-written durable baseline of issue 14 (`npm run bench:http -- --baseline`): what
 * a chat turn costs with nothing but the essentials, to measure this service against.
 * Fastify; the same HS256 access-token check as the service (src/auth/access-tokens.ts)
 * and one statement that checks the user is active, the token not revoked and its
 * session live (the service's check, src/repositories/users-repository.ts); the same
 * compiled `chat` / `chat_with_tools` graph (src/graphs) over the same local model
 * (src/providers/local-chat-model.ts); usage normalised and costed exactly as the
 * service does (src/providers); then one `pg` transaction writing the new conversation
 * with its totals and both messages with their tokens and cost, in the service's schema
 * (its own database, migrated like the service's). No spans, metrics, events, budgets,
 * rollups, run rows, rate limits or request logs: that is what the comparison is about.
 * It answers only what the benchmark sends: `{ message, enable_tools? }`, a new
 * conversation per request.
 *
 * Run as its own process: `node --import tsx bench/baseline-server.ts --database-url …
 * --port … --jwt-secret …`.
 */

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    port: { type: 'string', default: '0' },
    'jwt-secret': { type: 'string' },
    'pool-size': { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '0' },
    'tool-call-limit': { type: 'string', default: '10' },
  },
});
if (flags['database-url'] === undefined || flags['jwt-secret'] === undefined) {
  throw new Error('--database-url and --jwt-secret are required');
}

const PROVIDER = 'local';
const MODEL = LOCAL_DEFAULT_MODEL;
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i;

const pool = new pg.Pool({
  connectionString: flags['database-url'],
  max: Number(flags['pool-size']),
});
const tokens = createAccessTokens({
  secret: flags['jwt-secret'],
  ttlSeconds: 24 * 3600,
});
const tools = createToolRegistry();
const prices = loadShippedPrices();
const model = new LocalChatModel({
  model: MODEL,
  latencyMs: Number(flags['latency-ms']),
});
const toolCallLimit = Number(flags['tool-call-limit']);

/** The service's access check in one statement: user active, token not revoked, session live. */
const USER_FOR_TOKEN = `
  SELECT u.id, u.is_active,
         EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $2) AS token_revoked,
         EXISTS (SELECT 1 FROM refresh_tokens t
                 WHERE t.family_id = $3 AND t.user_id = u.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS session_live
  FROM users u WHERE u.id = $1`;

const INSERT_CONVERSATION = `
  INSERT INTO conversations (id, user_id, title, llm_provider, llm_model, message_count, total_tokens, total_cost, last_message_at)
  VALUES ($1, $2, $3, $4, $5, 2, $6, $7, now())`;

const INSERT_MESSAGES = `
  INSERT INTO messages (id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
                        cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms)
  VALUES ($1, $2, 'user', $3, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ($4, $2, 'assistant', $5, 1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`;

type Body = { readonly message: string; readonly enable_tools?: boolean };

const text = (message: BaseMessage | undefined): string => (typeof message?.content === 'string' ? message.content : '');

/** Cost in 1e-10 USD units as a decimal string (numeric(20, 10)), exact. */
const unitsToDecimal = (units: bigint): string => {
  const digits = units.toString().padStart(11, '0');
  return `${digits.slice(0, -10)}.${digits.slice(-10)}`;
};

const app = Fastify({ logger: false });

app.get('/healthz', async () => ({ status: 'ok' }));

// The chat route's scope: every request there is authenticated.
await app.register(async (chat) => {
  chat.addHook('onRequest', async (request, reply) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) return reply.code(401).send({ detail: 'Not authenticated' });
    let claims;
    try {
      claims = tokens.verify(token);
    } catch (error) {
      if (error instanceof AccessTokenError) return reply.code(401).send({ detail: 'Could not validate credentials' });
      throw error;
    }
    const { rows } = await pool.query<{
      id: string;
      is_active: boolean;
      token_revoked: boolean;
      session_live: boolean;
    }>(USER_FOR_TOKEN, [claims.sub, claims.jti, claims.sid]);
    const user = rows[0];
    if (user === undefined || !user.is_active || user.token_revoked || !user.session_live) {
      return reply.code(401).send({ detail: 'Could not validate credentials' });
    }
    (request as { userId?: string }).userId = user.id;
    return undefined;
  });

  chat.post<{ Body: Body }>(
    '/api/v1/workflows/execute/chat',
    {
      schema: {
        body: {
          type: 'object',
          required: ['message'],
          properties: {
            message: { type: 'string', minLength: 1 },
            enable_tools: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      const userId = (request as { userId?: string }).userId!;
      const startedAt = Date.now();
      const graph = createGraph(getTemplate(request.body.enable_tools === true ? 'chat_with_tools' : 'chat'), {
        model,
        tools,
        toolCallLimit,
      });
      const result = await graph.invoke({
        messages: [new HumanMessage(request.body.message)],
      });
      // Each model call costed on its own and summed in integer 1e-10 USD units, as the service does.
      const price = findPrice(prices, PROVIDER, MODEL, new Date(startedAt));
      let usage: Usage = zeroUsage();
      let costUnits = 0n;
      let finishReason: string | null = null;
      for (const message of result.messages) {
        if (!AIMessage.isInstance(message)) continue;
        const called = normalizeUsage(message.usage_metadata);
        if (called === null) throw new Error('the local model reported no usage');
        usage = addUsage(usage, called);
        if (price !== null) costUnits += computeCostUnits(called, price);
        finishReason = (message.response_metadata['finish_reason'] as string | undefined) ?? finishReason;
      }
      const cost = price === null ? null : unitsToDecimal(costUnits);
      const prompt = promptTokens(usage);
      const total = totalTokens(usage);
      const reply = text(result.messages.at(-1));
      const conversationId = ulid();
      const userMessageId = ulid();
      const assistantMessageId = ulid();
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(INSERT_CONVERSATION, [
          conversationId,
          userId,
          request.body.message.slice(0, 80),
          PROVIDER,
          MODEL,
          total,
          cost ?? '0',
        ]);
        await client.query(INSERT_MESSAGES, [
          userMessageId,
          conversationId,
          request.body.message,
          assistantMessageId,
          reply,
          prompt,
          usage.output,
          total,
          usage.cacheRead,
          usage.reasoning,
          cost,
          MODEL,
          PROVIDER,
          finishReason,
          Date.now() - startedAt,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
      return {
        conversation_id: conversationId,
        message: {
          id: assistantMessageId,
          content: reply,
          prompt_tokens: prompt,
          completion_tokens: usage.output,
          total_tokens: total,
          cost,
        },
      };
    },
  );
});

const address = await app.listen({
  host: '127.0.0.1',
  port: Number(flags.port),
});
console.log(`baseline listening on ${address}`);
const stop = (): void => {
  void app
    .close()
    .then(() => pool.end())
    .finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
