import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatTurnResult } from '../chat/chat-service.js';
import { runParentContext } from '../http/correlation.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import type { ChatLimits } from '../limits/chat-rate-limit.js';
import { createRunsRepository, type RunRow } from '../repositories/runs-repository.js';
import { asHttpError, chatRateLimit, chatServiceFor } from '../routes/chat.js';
import type { Services } from '../services.js';
import type { WorkflowChoice, WorkflowResolver } from './workflow-resolver.js';

/** What one execution of a workflow asks for: the user's message and the turn's settings. */
export type ExecutionInput = {
  readonly message: string;
  readonly conversationId?: string | undefined;
  readonly provider?: string | undefined;
  readonly model?: string | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
};

const MAX_MESSAGE = 100_000;

/**
 * The execution input of the contract's loose `input_data` (`message`, and optionally
 * `conversation_id`, `provider`, `model`, `temperature`, `max_tokens`).
 * @throws RequestValidationError 422 naming the field
 */
export const executionInputOf = (
  data: Readonly<Record<string, unknown>> | null | undefined,
  at: readonly string[] = ['body', 'input_data'],
): ExecutionInput => {
  const input = data ?? {};
  const problems: { loc: string[]; msg: string; type: string }[] = [];
  const text = (key: string, max: number, required: boolean): string | undefined => {
    const value = input[key];
    if (value === undefined || value === null) {
      if (required) problems.push({ loc: [...at, key], msg: `${key} is required: the user message the workflow answers`, type: 'missing' });
      return undefined;
    }
    if (typeof value !== 'string' || value.length === 0 || value.length > max) {
      problems.push({ loc: [...at, key], msg: `${key} must be text of 1 to ${max} characters`, type: 'string_type' });
      return undefined;
    }
    return value;
  };
  const number = (key: string, ok: (value: number) => boolean, expected: string): number | undefined => {
    const value = input[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !ok(value)) {
      problems.push({ loc: [...at, key], msg: `${key} must be ${expected}`, type: 'value_error' });
      return undefined;
    }
    return value;
  };
  const result: ExecutionInput = {
    message: text('message', MAX_MESSAGE, true) ?? '',
    conversationId: text('conversation_id', 128, false),
    provider: text('provider', 64, false),
    model: text('model', 200, false),
    temperature: number('temperature', (v) => v >= 0 && v <= 2, 'a number from 0 to 2'),
    maxTokens: number('max_tokens', (v) => Number.isInteger(v) && v >= 1 && v <= 8192, 'an integer from 1 to 8192'),
  };
  if (problems.length > 0) throw new RequestValidationError(problems);
  return result;
};

/**
 * Runs workflows for the workflow routes as chat turns: the same chat service, runtime,
 * actor, spans, budgets, limits and records as `POST /api/v1/workflows/execute/chat`
 * (the user's message and the reply are saved in a conversation), answered from the
 * run's stored row.
 */
export const createWorkflowExecutor = (
  app: FastifyInstance,
  { services, limits, workflows }: { services: Services; limits: ChatLimits; workflows: WorkflowResolver },
) => {
  const chat = chatServiceFor(app, services, workflows);
  const runs = createRunsRepository(app.db.pool);
  const rateLimit = chatRateLimit(app, limits);

  /**
   * Executes the workflow and answers once its records are saved: the run row and the reply.
   * @throws HttpError (404, 409, 429, 503, …), RequestValidationError 422
   */
  const execute = async (
    request: FastifyRequest,
    reply: FastifyReply,
    workflow: WorkflowChoice,
    input: ExecutionInput,
  ): Promise<{ row: RunRow; result: ChatTurnResult }> => {
    await rateLimit(request, reply, false);
    let result: ChatTurnResult;
    try {
      result = await chat.run({
        userId: request.user.id,
        message: input.message,
        conversationId: input.conversationId,
        provider: input.provider,
        model: input.model,
        temperature: input.temperature,
        maxTokens: input.maxTokens,
        workflow,
        correlationId: request.id,
        parentContext: runParentContext(request),
        streaming: false,
      });
    } catch (error) {
      throw asHttpError(error);
    }
    const row = await runs.findById(result.started.runId);
    if (row === null) {
      // Spooled while the database is away: the replay writes it.
      throw new HttpError(
        503,
        `Run ${result.started.runId} ended but its record is not in the database yet; retry shortly`,
        'run_record_pending',
      );
    }
    return { row, result };
  };

  return { execute };
};
