import type { ServerResponse } from 'node:http';
import { sendEvent, sendJson, startLoopbackServer, type RecordedRequest } from '../providers/loopback-server.js';

/** Usage as the Chat Completions API reports it (cached tokens inside prompt_tokens). */
export type OpenAIUsage = {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number; audio_tokens: number };
};

/**
 * A usage report as the server sends it: a well-formed {@link OpenAIUsage}, anything a
 * faulty provider might send instead (strings, negatives, fractions, inconsistent
 * totals), or `'omit'`: no `usage` field in a JSON response, no usage chunk in a stream.
 */
export type UsageReport = OpenAIUsage | Record<string, unknown> | 'omit';

/** What the server answers to one chat completion request; each request takes the next step. */
export type CompletionStep =
  | { kind: 'text'; text: string; usage: UsageReport }
  | { kind: 'toolCall'; id: string; name: string; arguments: string; usage: UsageReport }
  | { kind: 'error'; status: number; headers?: Record<string, string>; body: unknown }
  /** A stream that sends `text` word by word, then loses its connection: no finish, no usage, no [DONE]. */
  | { kind: 'cut'; text: string }
  /** Takes the request and never answers: no status, no headers, until the client gives up. */
  | { kind: 'hang' }
  /** A stream that sends `text` word by word, then goes silent with the connection open. */
  | { kind: 'stall'; text: string };

export type OpenAICompatibleServer = {
  /** `http://127.0.0.1:<port>/v1`, what OPENAI_BASE_URL takes. */
  readonly baseUrl: string;
  /** The chat completion requests received, in order. */
  readonly requests: RecordedRequest[];
  /** Queues the answers to the next requests. */
  readonly enqueue: (...steps: CompletionStep[]) => void;
  /** Steps not consumed yet. */
  readonly pending: () => number;
  /** Forgets the steps not consumed and the requests received (between tests). */
  readonly reset: () => void;
  readonly close: () => Promise<void>;
};

export const usageOf = (prompt: number, completion: number, cached = 0, reasoning = 0): OpenAIUsage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0 },
});

const CREATED = 1_767_225_600;

// Each completion gets its own id, as OpenAI's do: LangGraph's message list merges messages by id.
let completions = 0;
const nextId = (): string => {
  completions += 1;
  return `chatcmpl-loopback-${completions}`;
};

const chunk = (id: string, model: string, delta: object, finishReason: string | null = null): object => ({
  id,
  object: 'chat.completion.chunk',
  created: CREATED,
  model,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
});

const words = (text: string): string[] => text.split(/(?<= )/);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const answerJson = (response: ServerResponse, model: string, step: CompletionStep & { kind: 'text' | 'toolCall' }): void => {
  const message =
    step.kind === 'text'
      ? { role: 'assistant', content: step.text, refusal: null }
      : {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [{ id: step.id, type: 'function', function: { name: step.name, arguments: step.arguments } }],
        };
  sendJson(response, 200, {
    id: nextId(),
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: step.kind === 'text' ? 'stop' : 'tool_calls' }],
    ...(step.usage === 'omit' ? {} : { usage: step.usage }),
  });
};

const answerStream = async (
  response: ServerResponse,
  model: string,
  step: CompletionStep & { kind: 'text' | 'toolCall' | 'cut' | 'stall' },
  includeUsage: boolean,
): Promise<void> => {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const id = nextId();
  if (step.kind === 'toolCall') {
    sendEvent(
      response,
      chunk(id, model, {
        role: 'assistant',
        content: null,
        tool_calls: [{ index: 0, id: step.id, type: 'function', function: { name: step.name, arguments: '' } }],
      }),
    );
    // The arguments arrive in pieces, as OpenAI streams them.
    const half = Math.ceil(step.arguments.length / 2);
    for (const piece of [step.arguments.slice(0, half), step.arguments.slice(half)]) {
      sendEvent(response, chunk(id, model, { tool_calls: [{ index: 0, function: { arguments: piece } }] }));
    }
  } else {
    sendEvent(response, chunk(id, model, { role: 'assistant', content: '' }));
    for (const word of words(step.text)) {
      sendEvent(response, chunk(id, model, { content: word }));
    }
  }
  if (step.kind === 'cut') {
    // Let the client read the chunks sent so far, then drop the connection.
    await sleep(50);
    response.socket?.destroy();
    return;
  }
  if (step.kind === 'stall') {
    return; // the connection stays open and silent until the client gives up (or the server closes)
  }
  sendEvent(response, chunk(id, model, {}, step.kind === 'text' ? 'stop' : 'tool_calls'));
  if (includeUsage && step.usage !== 'omit') {
    sendEvent(response, { id, object: 'chat.completion.chunk', created: CREATED, model, choices: [], usage: step.usage });
  }
  sendEvent(response, '[DONE]');
  response.end();
};

/**
 * A loopback server speaking OpenAI's /v1/chat/completions (JSON, and SSE with a final
 * usage chunk when `stream_options.include_usage` is set) that plays a queue of steps.
 * The response model is the request's model with a date suffix, as OpenAI answers.
 */
export const startOpenAICompatibleServer = async (): Promise<OpenAICompatibleServer> => {
  const steps: CompletionStep[] = [];
  const requests: RecordedRequest[] = [];
  const server = await startLoopbackServer(async (request, response) => {
    if (request.method !== 'POST' || request.path !== '/v1/chat/completions') {
      sendJson(response, 404, { error: { message: `no route ${request.path}`, type: 'invalid_request_error' } });
      return;
    }
    requests.push(request);
    const step = steps.shift();
    if (step === undefined) {
      sendJson(response, 400, { error: { message: 'the test scripted no more responses', type: 'invalid_request_error' } });
      return;
    }
    if (step.kind === 'error') {
      sendJson(response, step.status, step.body, step.headers ?? {});
      return;
    }
    if (step.kind === 'hang') {
      return; // no answer at all; close() ends the connection
    }
    const body = request.body as { model: string; stream?: boolean; stream_options?: { include_usage?: boolean } };
    const model = `${body.model}-2024-07-18`;
    if (body.stream === true) {
      await answerStream(response, model, step, body.stream_options?.include_usage === true);
    } else if (step.kind === 'cut' || step.kind === 'stall') {
      // A JSON body cut half-way (or, stalling, left half-way).
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`{"id":"${nextId()}","object":"chat.comp`);
      if (step.kind === 'cut') {
        await sleep(20);
        response.socket?.destroy();
      }
    } else {
      answerJson(response, model, step);
    }
  });
  return {
    baseUrl: `${server.origin}/v1`,
    requests,
    enqueue: (...more) => {
      steps.push(...more);
    },
    pending: () => steps.length,
    reset: () => {
      steps.length = 0;
      requests.length = 0;
    },
    close: () => server.close(),
  };
};
