import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createChatService, type ChatTurnRequest, type ChatTurnResult } from '../chat/chat-service.js';
import { refuseUnavailableFeatures } from '../chat/unavailable-features.js';
import { UnknownTemplateError } from '../graphs/templates.js';
import { runParentContext } from '../http/correlation.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import { openEventStream, type EventStream } from '../http/sse.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import type { ChatRequestBody } from '../http/schemas/chat-schemas.js';
import { ConversationBusyError } from '../repositories/turns-repository.js';
import { createChatRateLimiter } from '../limits/chat-rate-limit.js';
import { RunConflictError, RuntimeClosedError } from '../runtime/run-runtime.js';
import type { Services } from '../services.js';
import { MAX_WORKFLOW_EDGES, MAX_WORKFLOW_NODES, type BuilderEdge, type BuilderNode } from '../workflows/builder-graph.js';
import { workflowResolverFor, type WorkflowChoice, type WorkflowResolver } from '../workflows/workflow-resolver.js';

export type ChatRoutesOptions = {
  readonly services: Services;
  readonly limits: { readonly chatPerMinute: number; readonly streamingPerMinute: number; readonly perHour: number };
};

/** Known domain errors → their HTTP answer; anything else goes to the error handler. */
export const asHttpError = (error: unknown): unknown => {
  if (error instanceof RunConflictError || error instanceof ConversationBusyError) {
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

/**
 * The user's workflow a chat request names: `workflow_definition_id`, or a builder graph
 * in `workflow_config` (`{nodes, edges, entry_point?}`); one of them at most.
 * @throws RequestValidationError 422
 */
const workflowOf = (body: ChatRequestBody): WorkflowChoice | undefined => {
  const config = body.workflow_config ?? undefined;
  const id = body.workflow_definition_id ?? undefined;
  if (id !== undefined && config !== undefined) {
    throw new RequestValidationError([
      { loc: ['body', 'workflow_config'], msg: 'give workflow_definition_id or workflow_config, not both', type: 'value_error' },
    ]);
  }
  if (id !== undefined) return { kind: 'definition', id };
  if (config === undefined) return undefined;
  const { nodes, edges, entry_point: entry } = config;
  const list = (value: unknown, key: string, max: number) =>
    Array.isArray(value) && value.length <= max
      ? []
      : [
          {
            loc: ['body', 'workflow_config', key],
            msg: `workflow_config.${key} must be a list of at most ${max} ${key}`,
            type: 'list_type',
          },
        ];
  const problems = [
    ...list(nodes, 'nodes', MAX_WORKFLOW_NODES),
    ...list(edges, 'edges', MAX_WORKFLOW_EDGES),
    ...(entry === undefined || typeof entry === 'string'
      ? []
      : [{ loc: ['body', 'workflow_config', 'entry_point'], msg: 'entry_point must be a node id', type: 'string_type' }]),
  ];
  if (problems.length > 0) throw new RequestValidationError(problems);
  return { kind: 'graph', nodes: nodes as BuilderNode[], edges: edges as BuilderEdge[], entry: entry as string | undefined };
};

/**
 * The stored message's figures. A run that left no message (it failed before any model
 * answered) has none: they are null, never an invented 0.
 */
const usageMetadata = (result: ChatTurnResult) => {
  const message = result.assistantMessage;
  return {
    total_tokens: message?.total_tokens ?? null,
    prompt_tokens: message?.prompt_tokens ?? null,
    completion_tokens: message?.completion_tokens ?? null,
    cached_input_tokens: message?.cached_input_tokens ?? null,
    reasoning_tokens: message?.reasoning_tokens ?? null,
    cost: message?.cost ?? null,
    model_used: message?.model_used ?? null,
    provider_used: message?.provider_used ?? null,
    response_time_ms: message?.response_time_ms ?? null,
    finish_reason: message?.finish_reason ?? null,
    run_id: result.started.runId,
    run_status: result.outcome.status,
  };
};

/** A route plugin's chat service: the app's database, the services' runtime, writer and providers, users' workflows. */
export const chatServiceFor = (
  app: FastifyInstance,
  services: Services,
  workflows: WorkflowResolver = workflowResolverFor(app, services),
) =>
  createChatService({
    pool: app.db.pool,
    runtime: services.runtime,
    records: services.writer,
    providers: services.providers,
    instanceId: services.instanceId,
    workflows,
  });

/**
 * Per-user chat limits with the contract's headers; 429 with Retry-After past them.
 * Counted in the shared limit store: the limits hold once across every instance.
 */
export const chatRateLimit = (app: FastifyInstance, limits: ChatRoutesOptions['limits']) => {
  const limiter = createChatRateLimiter({ store: app.limits.store, limits, now: app.limits.now });
  return async (request: FastifyRequest, reply: FastifyReply, streaming: boolean): Promise<void> => {
    const key = request.user.id;
    const verdict = await limiter.take(key, streaming);
    if (!verdict.allowed) {
      void reply.header('retry-after', String(verdict.retryAfterSeconds));
      await app.securityEvents.record(request, { type: 'rate_limited', userId: key, reason: streaming ? 'chat_streaming' : 'chat' });
      throw new HttpError(429, 'Too many chat requests; slow down', 'rate_limited');
    }
    void reply.headers(verdict.headers);
  };
};

/**
 * `POST /api/v1/workflows/execute/chat` (JSON) and `/streaming` (Server-Sent Events).
 * Both save the user's message and answer once the run's records are saved.
 */
export const chatRoutes: FastifyPluginAsync<ChatRoutesOptions> = async (app, { services, limits }) => {
  const chat = chatServiceFor(app, services);
  const rateLimit = chatRateLimit(app, limits);

  app.addHook('onRequest', app.authenticate);

  const turnRequest = (request: FastifyRequest<{ Body: ChatRequestBody }>, streaming: boolean): ChatTurnRequest => {
    const body = request.body;
    return {
      userId: request.user.id,
      userBudget: request.user.budget,
      message: body.message,
      conversationId: body.conversation_id,
      provider: body.provider,
      model: body.model,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      workflowTemplateName: body.workflow_template_name,
      workflow: workflowOf(body),
      enableTools: body.enable_tools,
      enableMemory: body.enable_memory,
      contextLimit: body.context_limit,
      systemPromptOverride: body.system_prompt_override,
      profileId: body.profile_id,
      promptId: body.prompt_id,
      promptVariables: body.prompt_variables,
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
      refuseUnavailableFeatures(request.body); // 422 before the request counts or anything is saved
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
      refuseUnavailableFeatures(request.body);
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
