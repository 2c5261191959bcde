import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { SlidingWindowCounter } from '../auth/sliding-window.js';
import { createChatService, type ChatTurnRequest, type ChatTurnResult } from '../chat/chat-service.js';
import { UnknownTemplateError } from '../graphs/templates.js';
import { runParentContext } from '../http/correlation.js';
import { HttpError } from '../http/errors.js';
import { openEventStream, type EventStream } from '../http/sse.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import type { ChatRequestBody } from '../http/schemas/chat-schemas.js';
import { RunConflictError, RuntimeClosedError } from '../runtime/run-runtime.js';
import type { Services } from '../services.js';

export type ChatRoutesOptions = {
  readonly services: Services;
  readonly limits: { readonly chatPerMinute: number; readonly streamingPerMinute: number; readonly perHour: number };
};

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Known domain errors → their HTTP answer; anything else goes to the error handler. */
const asHttpError = (error: unknown): unknown => {
  if (error instanceof RunConflictError) {
    return new HttpError(409, 'A reply is already being generated in this conversation', 'run_in_progress');
  }
  if (error instanceof RuntimeClosedError) {
    return new HttpError(503, 'The service is shutting down; retry on another instance', 'shutting_down');
  }
  if (error instanceof UnknownTemplateError) {
    return new HttpError(400, error.message, 'unknown_workflow_template');
  }
  return error;
};

const usageMetadata = (result: ChatTurnResult) => {
  const message = result.assistantMessage;
  return {
    total_tokens: message?.total_tokens ?? 0,
    prompt_tokens: message?.prompt_tokens ?? 0,
    completion_tokens: message?.completion_tokens ?? 0,
    cached_input_tokens: message?.cached_input_tokens ?? 0,
    reasoning_tokens: message?.reasoning_tokens ?? 0,
    cost: message?.cost ?? null,
    model_used: message?.model_used ?? null,
    provider_used: message?.provider_used ?? null,
    response_time_ms: message?.response_time_ms ?? null,
    finish_reason: message?.finish_reason ?? null,
    run_id: result.started.runId,
    run_status: result.outcome.status,
  };
};

/**
 * `POST /api/v1/workflows/execute/chat` (JSON) and `/streaming` (Server-Sent Events).
 * Both save the user's message and answer once the run's records are saved.
 */
export const chatRoutes: FastifyPluginAsync<ChatRoutesOptions> = async (app, { services, limits }) => {
  const chat = createChatService({
    pool: app.db.pool,
    runtime: services.runtime,
    providers: services.providers,
    instanceId: services.instanceId,
  });
  const perMinute = new SlidingWindowCounter({ windowMs: MINUTE });
  const perMinuteStreaming = new SlidingWindowCounter({ windowMs: MINUTE });
  const perHour = new SlidingWindowCounter({ windowMs: HOUR });

  app.addHook('onRequest', app.authenticate);

  /** Per-user limits with the contract's headers; 429 with Retry-After past them. */
  const rateLimit = async (request: FastifyRequest, reply: FastifyReply, streaming: boolean): Promise<void> => {
    const key = request.user.id;
    const minute = streaming ? perMinuteStreaming : perMinute;
    const minuteLimit = streaming ? limits.streamingPerMinute : limits.chatPerMinute;
    const overMinute = minute.count(key) >= minuteLimit;
    const overHour = perHour.count(key) >= limits.perHour;
    if (overMinute || overHour) {
      const retryAfterMs = Math.max(
        overMinute ? minute.retryAfterMs(key, minuteLimit) : 0,
        overHour ? perHour.retryAfterMs(key, limits.perHour) : 0,
      );
      void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
      await app.securityEvents.record(request, { type: 'rate_limited', userId: key, reason: streaming ? 'chat_streaming' : 'chat' });
      throw new HttpError(429, 'Too many chat requests; slow down', 'rate_limited');
    }
    minute.hit(key);
    perHour.hit(key);
    void reply.headers({
      'x-ratelimit-limit-minute': String(minuteLimit),
      'x-ratelimit-remaining-minute': String(Math.max(0, minuteLimit - minute.count(key))),
      'x-ratelimit-limit-hour': String(limits.perHour),
      'x-ratelimit-remaining-hour': String(Math.max(0, limits.perHour - perHour.count(key))),
    });
  };

  const turnRequest = (request: FastifyRequest<{ Body: ChatRequestBody }>, streaming: boolean): ChatTurnRequest => {
    const body = request.body;
    return {
      userId: request.user.id,
      message: body.message,
      conversationId: body.conversation_id,
      provider: body.provider,
      model: body.model,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      workflowTemplateName: body.workflow_template_name,
      enableTools: body.enable_tools,
      enableMemory: body.enable_memory,
      contextLimit: body.context_limit,
      systemPromptOverride: body.system_prompt_override,
      correlationId: request.id,
      parentContext: runParentContext(request),
      streaming,
    };
  };

  app.post<{ Body: ChatRequestBody }>(
    '/execute/chat',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Execute Chat Workflow',
        operationId: 'execute_chat_workflow_api_v1_workflows_execute_chat_post',
        security: bearerSecurity,
        body: { $ref: 'ChatRequest#' },
        response: { 200: { $ref: 'ChatResponse#' }, ...errorResponses(400, 401, 404, 409, 413, 429) },
      },
    },
    async (request, reply) => {
      await rateLimit(request, reply, false);
      let result: ChatTurnResult;
      try {
        result = await chat.run(turnRequest(request, false));
      } catch (error) {
        throw asHttpError(error);
      }
      if (result.assistantMessage === null) {
        const { status, error } = result.outcome;
        if (status === 'budgetExceeded') {
          // Its first model call could not reserve: the budget went to runs in flight.
          throw new HttpError(402, 'The token or cost budget for this conversation or account is used up', 'budget_exhausted');
        }
        throw new HttpError(
          status === 'timedOut' ? 504 : 502,
          status === 'timedOut' ? 'The model did not answer in time' : `The model provider failed: ${error ?? status}`,
          status === 'timedOut' ? 'run_timed_out' : 'provider_error',
        );
      }
      return {
        conversation_id: result.started.conversationId,
        message: result.assistantMessage,
        conversation: result.conversation,
        run_id: result.started.runId,
        correlation_id: request.id,
        run_status: result.outcome.status,
      };
    },
  );

  app.post<{ Body: ChatRequestBody }>(
    '/execute/chat/streaming',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Execute Chat Workflow Streaming',
        operationId: 'execute_chat_workflow_streaming_api_v1_workflows_execute_chat_streaming_post',
        security: bearerSecurity,
        body: { $ref: 'ChatRequest#' },
        response: errorResponses(400, 401, 404, 409, 413, 429),
      },
    },
    async (request, reply) => {
      await rateLimit(request, reply, true);
      let ids: { conversation_id: string; message_id: string; correlation_id: string } | undefined;
      let stream: EventStream | undefined;
      let finished = false;
      const turn: ChatTurnRequest = {
        ...turnRequest(request, true),
        onStarted: (started) => {
          ids = { conversation_id: started.conversationId, message_id: started.assistantMessageId, correlation_id: request.id };
          // From here on the answer is a stream: headers go out now. The contract's chunks
          // are bare `data:` lines, so no connected comment and no keep-alives.
          stream = openEventStream(reply, {
            connectedComment: false,
            keepAliveMs: 0,
            // A client that goes away (or reads too slowly) mid-stream cancels the run; its usage so far is kept.
            onClose: (reason) => {
              if (!finished) started.cancel(reason === 'too_slow' ? 'client too slow' : 'client disconnected');
            },
          });
          stream.send({ type: 'start', ...ids });
        },
        onToken: (text) => void stream?.send({ type: 'token', content: text, ...ids }),
      };
      let result: ChatTurnResult;
      try {
        result = await chat.run(turn);
      } catch (error) {
        finished = true;
        if (stream === undefined) {
          throw asHttpError(error); // nothing was streamed: an ordinary error response
        }
        request.log.error({ err: error }, 'streaming chat failed');
        stream.send({ type: 'error', content: 'The reply could not be completed', ...ids });
        stream.send('[DONE]');
        stream.close();
        return reply;
      }
      finished = true;
      if (stream === undefined) {
        throw new Error('the chat turn ended without starting'); // chat.run calls onStarted before it resolves
      }
      const metadata = usageMetadata(result);
      if (result.outcome.status === 'completed') {
        stream.send({ type: 'complete', content: result.assistantMessage?.content ?? '', metadata, ...ids });
      } else {
        stream.send({
          type: 'error',
          content: result.outcome.error ?? `The run ended: ${result.outcome.terminalReason ?? result.outcome.status}`,
          metadata,
          ...ids,
        });
      }
      stream.send('[DONE]');
      stream.close();
      return reply;
    },
  );
};
