import { HumanMessage } from '@langchain/core/messages';
import { sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import type { ProviderUsageReport, ScriptedChatModel, ScriptedTurn } from '../test/helpers/scripted-chat-model.js';
import { beginTurn } from '../src/repositories/turns-repository.js';
import type { Services } from '../src/services.js';

/**
 * Pushes real turns through the real pipeline (beginTurn like the chat route, then the
 * runtime: actor, spans, database writer with its rollups), with a scripted model: plain
 * answers with cached input, tool loops, a retried transient failure and a hard failure.
 */

const usage = (input: number, output: number, cacheRead = 0, cacheWrite = 0): ProviderUsageReport => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead, cache_creation: cacheWrite },
});

type Plan = { readonly workflow: string; readonly provider: string; readonly model: string; readonly turns: ScriptedTurn[] };

const planOf = (index: number): Plan => {
  const provider = index % 3 === 2 ? 'anthropic' : 'openai';
  const model = provider === 'anthropic' ? 'claude-haiku-4-5' : 'gpt-4o-mini';
  switch (index % 5) {
    case 1:
      return {
        workflow: 'chat_with_tools',
        provider,
        model,
        turns: [
          { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: usage(40 + index, 6, 10, index % 2) },
          { content: 'It is 42.', usage: usage(60 + index, 4) },
        ],
      };
    case 2:
      return {
        workflow: 'chat',
        provider,
        model,
        turns: [{ error: { message: 'overloaded', status: 503 } }, { content: 'Retried answer.', usage: usage(30, 9) }],
      };
    case 3:
      return { workflow: 'chat', provider, model, turns: [{ error: { message: 'bad request', status: 400 } }] };
    default:
      return {
        workflow: 'chat',
        provider,
        model,
        turns: [{ content: `Answer number ${index}.`, usage: usage(100 + index * 7, 20 + index, index * 3) }],
      };
  }
};

export type RealRunsOptions = {
  readonly pool: DatabasePool;
  readonly services: Services;
  /** Sets the scripted model the next runs use. */
  readonly script: (turns: ScriptedTurn[]) => ScriptedChatModel;
  /** Whose runs: cycled through (the first gets a new conversation, then continues it). */
  readonly userIds: readonly string[];
  readonly count: number;
};

/** Runs `count` turns one after another and waits until their records are committed. */
export const pushRealRuns = async (options: RealRunsOptions): Promise<{ completed: number; failed: number }> => {
  const { services, pool } = options;
  const conversations = new Map<string, string>();
  let completed = 0;
  let failed = 0;
  for (let index = 0; index < options.count; index += 1) {
    const userId = options.userIds[index % options.userIds.length] ?? '';
    let conversationId = conversations.get(userId);
    if (conversationId === undefined) {
      conversationId = ulid();
      await pool.query(sql.unsafe`INSERT INTO conversations (id, user_id, title) VALUES (${conversationId}, ${userId}, 'bench real runs')`);
      conversations.set(userId, conversationId);
    }
    const plan = planOf(index);
    options.script(plan.turns);
    const runId = ulid();
    const correlationId = ulid();
    const content = `Real question ${index}`;
    const release = services.runtime.reserve(conversationId, runId);
    const turn = await beginTurn(pool, {
      conversationId,
      userId,
      content,
      runId,
      workflow: plan.workflow,
      provider: plan.provider,
      model: plan.model,
      correlationId,
      instanceId: services.instanceId,
    }).catch((error: unknown) => {
      release();
      throw error;
    });
    const handle = services.runtime.start({
      runId,
      userId,
      conversationId,
      correlationId,
      workflow: plan.workflow,
      provider: plan.provider,
      model: plan.model,
      messages: [new HumanMessage(content)],
      budget: { tokensRemaining: null, costRemainingUsd: null },
      userMessageId: turn.userMessageId,
      assistantMessageId: ulid(),
      streaming: false,
      onToken: undefined,
    });
    const outcome = await handle.done;
    if (outcome.status === 'completed') completed += 1;
    else failed += 1;
  }
  await services.writer.forceFlush();
  return { completed, failed };
};
