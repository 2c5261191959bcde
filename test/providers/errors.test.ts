import { ContextOverflowError, ModelAbortError } from '@langchain/core/errors';
import { OpenAIClient } from '@langchain/openai';
import { describe, expect, it } from 'vitest';
import { classifyProviderError, computeBackoffMs, parseRetryAfterMs } from '../../src/providers/errors.js';

// The OpenAI SDK's own error factory (reached through @langchain/openai), so the shapes
// are exactly what a failed request produces.
const apiError = (status: number, headers: Record<string, string> = {}, body: object = { message: 'failed' }) =>
  OpenAIClient.APIError.generate(status, { error: body }, undefined, new Headers(headers));

describe('classifyProviderError', () => {
  it('treats 429 as transient and reads Retry-After in seconds', () => {
    expect(classifyProviderError(apiError(429, { 'retry-after': '2' }))).toEqual({
      transient: true,
      status: 429,
      retryAfterMs: 2_000,
      message: '429 failed',
    });
  });

  it('prefers retry-after-ms over Retry-After', () => {
    expect(classifyProviderError(apiError(429, { 'retry-after-ms': '1250', 'retry-after': '2' })).retryAfterMs).toBe(1_250);
  });

  it('reads Retry-After given as an HTTP date against the injected clock', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const error = apiError(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' });
    expect(classifyProviderError(error, { now: () => now })).toMatchObject({ transient: true, retryAfterMs: 30_000 });
  });

  it.each([408, 409, 429, 500, 502, 503, 504, 529])('treats status %i as transient', (status) => {
    expect(classifyProviderError(apiError(status))).toMatchObject({ transient: true, status });
  });

  it.each([400, 401, 403, 404, 422])('treats status %i as permanent', (status) => {
    expect(classifyProviderError(apiError(status))).toMatchObject({ transient: false, status });
  });

  it('lets the provider override the status with x-should-retry', () => {
    expect(classifyProviderError(apiError(500, { 'x-should-retry': 'false' })).transient).toBe(false);
    expect(classifyProviderError(apiError(400, { 'x-should-retry': 'true' })).transient).toBe(true);
  });

  it('finds the status through a LangChain wrapper cause chain', () => {
    const wrapped = ContextOverflowError.fromError(apiError(400, {}, { message: 'context_length_exceeded' }));
    expect(classifyProviderError(wrapped)).toMatchObject({ transient: false, status: 400 });
  });

  it('treats connection failures as transient', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(classifyProviderError(reset).transient).toBe(true);
    expect(classifyProviderError(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })).transient).toBe(true);
    expect(classifyProviderError(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })).transient).toBe(true);
    expect(classifyProviderError(new Error('socket hang up')).transient).toBe(true);
    expect(classifyProviderError(new OpenAIClient.APIConnectionError({ cause: reset })).transient).toBe(true);
  });

  it('treats a stream cut mid-way as transient', () => {
    // undici's error when a response body stops before its end.
    const cut = new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    expect(classifyProviderError(cut)).toMatchObject({ transient: true, message: 'terminated' });
    // Some layers keep only the message.
    expect(classifyProviderError(new TypeError('terminated')).transient).toBe(true);
  });

  it('classifies error events sent inside a stream by their type', () => {
    // The Anthropic SDK throws APIError(undefined, body) for `event: error`.
    const overloaded = { message: 'Overloaded', error: { type: 'error', error: { type: 'overloaded_error' } } };
    expect(classifyProviderError(overloaded).transient).toBe(true);
    const invalid = { message: 'bad', error: { type: 'error', error: { type: 'invalid_request_error' } } };
    expect(classifyProviderError(invalid).transient).toBe(false);
  });

  it('treats every shape of abort as a cancel, not a transient failure', () => {
    for (const abort of [
      new DOMException('This operation was aborted', 'AbortError'),
      new Error('AbortError'),
      new Error('Aborted'),
      new ModelAbortError('Model invocation was aborted.'),
      new OpenAIClient.APIUserAbortError(),
    ]) {
      expect(classifyProviderError(abort), String(abort)).toMatchObject({ transient: false, aborted: true });
    }
  });

  it('treats unknown errors as permanent', () => {
    expect(classifyProviderError(new Error('boom'))).toEqual({ transient: false, message: 'boom' });
    expect(classifyProviderError('plain string')).toEqual({ transient: false, message: 'plain string' });
  });

  it('uses a retryAfterMs that LangChain attached when there are no headers', () => {
    expect(classifyProviderError(Object.assign(new Error('rate'), { status: 429, retryAfterMs: 700 }))).toMatchObject({
      transient: true,
      retryAfterMs: 700,
    });
  });
});

describe('parseRetryAfterMs', () => {
  it('reads plain-object headers case-insensitively and ignores garbage', () => {
    expect(parseRetryAfterMs({ 'Retry-After': '1.5' })).toBe(1_500);
    expect(parseRetryAfterMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(parseRetryAfterMs({ 'retry-after': '-3' })).toBeUndefined();
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
  });

  it('returns 0 for a date in the past', () => {
    expect(parseRetryAfterMs({ 'retry-after': 'Thu, 01 Jan 2015 00:00:00 GMT' })).toBe(0);
  });
});

describe('computeBackoffMs', () => {
  const half = () => 0.5;

  it('doubles the jitter ceiling with each attempt', () => {
    expect([1, 2, 3, 4].map((attempt) => computeBackoffMs(attempt, 500, undefined, half))).toEqual([250, 500, 1_000, 2_000]);
  });

  it('applies full jitter from 0 up to the ceiling', () => {
    expect(computeBackoffMs(3, 500, undefined, () => 0)).toBe(0);
    expect(computeBackoffMs(3, 500, undefined, () => 0.999)).toBe(1_998);
  });

  it('caps the exponential part at 30 s, even for huge attempt numbers', () => {
    expect(computeBackoffMs(20, 500, undefined, () => 0.999999)).toBe(29_999);
    expect(computeBackoffMs(10_000, 500, undefined, () => 1)).toBe(30_000);
  });

  it('waits at least the Retry-After the provider asked for', () => {
    expect(computeBackoffMs(1, 500, 5_000, half)).toBe(5_000);
    expect(computeBackoffMs(4, 500, 100, half)).toBe(2_000);
    expect(computeBackoffMs(1, 500, 60_000, half)).toBe(60_000);
  });
});
