import { getRetryable } from '@langchain/core/errors';

/** How the runtime should treat a failed model call (the `model.failed` event payload). */
export type ProviderErrorClassification = {
  /** Retrying the same request may succeed. */
  transient: boolean;
  status?: number;
  /** How long the provider asked us to wait, from Retry-After / retry-after-ms. */
  retryAfterMs?: number;
  message: string;
  /** The call was cancelled through its AbortSignal: never retried, not a provider fault. */
  aborted?: true;
};

/** Options of {@link classifyProviderError}. */
export type ClassifyOptions = {
  /** Clock for Retry-After given as an HTTP date. */
  now?: () => number;
};

// 408 request timeout, 409 conflict (the OpenAI and Anthropic SDKs both retry it:
// transient lock contention), 425 too early, 429 rate limited; every 5xx (529 is
// Anthropic's "overloaded").
const TRANSIENT_STATUSES = new Set([408, 409, 425, 429]);

// Node/undici network failures on which the request may well succeed next time.
// ENOTFOUND is left out on purpose: a wrong host name does not fix itself.
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

// Error bodies sent *inside* a stream (no HTTP status: the 200 was already sent).
// Anthropic: `event: error` with error.type; OpenAI: `data: {"error": {...}}`.
const TRANSIENT_BODY_TYPES = new Set([
  'overloaded_error',
  'api_error',
  'rate_limit_error',
  'timeout_error',
  'server_error',
  'service_unavailable',
]);

// Stream cut or connection loss, as the message is all some layers keep: undici's
// "terminated" when a response body stops mid-way, Node's "socket hang up", the SDKs'
// "Connection error." / "Request timed out.".
const TRANSIENT_MESSAGE =
  /^(terminated|socket hang up|fetch failed|other side closed|premature close|connection error\.?|request timed out\.?)$|\b(ECONNRESET|ETIMEDOUT|ECONNREFUSED|socket hang up)\b/i;

// The shapes an abort takes on this stack: DOM AbortError (fetch, our models),
// LangChain's ModelAbortError, the SDKs' APIUserAbortError, and the bare
// `Error("AbortError")` / `Error("Aborted")` that @langchain/openai and
// @langchain/core's AsyncCaller throw.
const ABORT_NAMES = new Set(['AbortError', 'ModelAbortError', 'APIUserAbortError']);
const ABORT_MESSAGE = /^(AbortError|Aborted|Request was aborted\.?|This operation was aborted|The operation was aborted\.?)$/i;

const CONNECTION_FAILURE_NAMES = new Set(['TimeoutError', 'APIConnectionTimeoutError', 'APIConnectionError']);

type Fields = {
  name?: string;
  constructorName?: string;
  message?: string;
  status?: number;
  code?: string;
  bodyType?: string;
  headers?: unknown;
  retryAfterMs?: number;
};

function read(value: unknown): Fields {
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'string' ? { message: value } : {};
  }
  const record = value as Record<string, unknown>;
  const response = isRecord(record.response) ? record.response : undefined;
  const body = isRecord(record.error) ? record.error : undefined;
  const nested = body && isRecord(body.error) ? body.error : undefined;
  const status = firstNumber(record.status, record.statusCode, response?.status);
  return {
    name: typeof record.name === 'string' ? record.name : undefined,
    constructorName: typeof record.constructor === 'function' ? record.constructor.name : undefined,
    message: typeof record.message === 'string' ? record.message : undefined,
    status,
    code: firstString(record.code, body?.code),
    bodyType: firstString(record.type, nested?.type, body?.type),
    headers: record.headers ?? response?.headers,
    retryAfterMs: firstNumber(record.retryAfterMs),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function firstNumber(...values: unknown[]): number | undefined {
  return values.find((value): value is number => typeof value === 'number' && Number.isFinite(value));
}

function firstString(...values: unknown[]): string | undefined {
  return values.find((value): value is string => typeof value === 'string' && value !== '');
}

/** Reads a header from a fetch `Headers` (both SDKs) or a plain object, case-insensitively. */
function header(headers: unknown, name: string): string | undefined {
  if (!isRecord(headers)) return undefined;
  if (typeof headers.get === 'function') {
    const value = (headers.get as (key: string) => unknown).call(headers, name);
    return typeof value === 'string' ? value : undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? String(value[0]) : String(value);
  }
  return undefined;
}

/**
 * Parses the wait a provider asks for: `retry-after-ms` (OpenAI/Anthropic, milliseconds)
 * first, then `Retry-After` as delta-seconds or an HTTP date. Negative or unparsable
 * values are ignored; a date in the past means "now" (0).
 */
export function parseRetryAfterMs(headers: unknown, now: () => number = Date.now): number | undefined {
  const millis = header(headers, 'retry-after-ms');
  if (millis !== undefined && millis.trim() !== '') {
    const value = Number(millis);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const retryAfter = header(headers, 'retry-after')?.trim();
  if (retryAfter === undefined || retryAfter === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Math.ceil(Number(retryAfter) * 1000);
  // An HTTP date names its weekday/month; without letters Date.parse would read "-3" as a year.
  if (!/[a-z]/i.test(retryAfter)) return undefined;
  const date = Date.parse(retryAfter);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now());
}

/** The error and its `cause` chain (LangChain wraps SDK errors, e.g. ContextOverflowError). */
function chain(error: unknown): unknown[] {
  const links: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && links.length < 6 && !links.includes(current)) {
    links.push(current);
    current = isRecord(current) ? current.cause : undefined;
  }
  return links;
}

/**
 * Classifies a model-call failure as transient (worth retrying) or not, from what the
 * OpenAI/Anthropic SDKs, LangChain and Node put on the error: HTTP status, headers,
 * network error codes, in-stream error bodies, abort markers.
 *
 * Transient: 408, 409, 425, 429, 5xx, connection resets/refusals/timeouts, a stream cut
 * mid-way ("terminated"), in-stream overloaded/server errors. Not transient: other 4xx
 * (400, 401, 403, 404, 422…), aborts (a cancel is not a failure to retry), anything
 * unrecognised. An `x-should-retry` header from the provider overrides the status.
 */
export function classifyProviderError(error: unknown, options: ClassifyOptions = {}): ProviderErrorClassification {
  const now = options.now ?? Date.now;
  const links = chain(error).map(read);
  const top = links[0] ?? {};
  const message = top.message ?? (error === undefined ? 'Unknown error' : String(error));

  if (
    links.some(
      (link) => ABORT_NAMES.has(link.name ?? '') || ABORT_NAMES.has(link.constructorName ?? '') || ABORT_MESSAGE.test(link.message ?? ''),
    )
  ) {
    return { transient: false, message, aborted: true };
  }

  const status = links.find((link) => link.status !== undefined)?.status;
  const headers = links.find((link) => link.headers !== undefined)?.headers;
  const retryAfterMs = parseRetryAfterMs(headers, now) ?? links.find((link) => link.retryAfterMs !== undefined)?.retryAfterMs;
  const result = (transient: boolean): ProviderErrorClassification => ({
    transient,
    message,
    ...(status === undefined ? {} : { status }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });

  const shouldRetry = header(headers, 'x-should-retry');
  if (shouldRetry === 'true') return result(true);
  if (shouldRetry === 'false') return result(false);

  if (status !== undefined) return result(TRANSIENT_STATUSES.has(status) || (status >= 500 && status <= 599));

  for (const link of links) {
    if (link.code !== undefined && TRANSIENT_CODES.has(link.code)) return result(true);
    if (link.bodyType !== undefined && TRANSIENT_BODY_TYPES.has(link.bodyType)) return result(true);
    if (CONNECTION_FAILURE_NAMES.has(link.name ?? '') || CONNECTION_FAILURE_NAMES.has(link.constructorName ?? '')) return result(true);
    if (TRANSIENT_MESSAGE.test(link.message ?? '')) return result(true);
  }
  // LangChain stamps some errors it has classified itself (e.g. wrapped SDK timeouts).
  return result(getRetryable(error) ?? false);
}

/** Upper bound of the exponential part of {@link computeBackoffMs}. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * Delay before retry number `attempt` (1 = first retry): exponential with full jitter,
 * `random() × min(capMs, baseMs × 2^(attempt−1))`, so concurrent runs that failed
 * together don't retry together. When the provider sent Retry-After the delay is at
 * least that: retrying earlier is refused anyway and counts against the rate limit.
 * The cap bounds the exponential part only; a caller with a deadline should give up
 * rather than wait out a Retry-After longer than what is left.
 */
export function computeBackoffMs(
  attempt: number,
  baseMs: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
  capMs: number = MAX_BACKOFF_MS,
): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity for huge attempts; min() keeps it at the cap.
  const ceiling = Math.min(capMs, Math.max(0, baseMs) * 2 ** exponent);
  const jittered = Math.floor(Math.min(Math.max(random(), 0), 1) * ceiling);
  return Math.max(jittered, Math.ceil(Math.max(0, retryAfterMs ?? 0)));
}
