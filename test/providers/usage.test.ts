import type { UsageMetadata } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import {
  addUsage,
  completionTokens,
  normalizeUsage,
  promptTokens,
  totalTokens,
  UsageSchema,
  ZERO_USAGE,
} from '../../src/providers/usage.js';

describe('normalizeUsage', () => {
  it('splits OpenAI-style usage, where input_tokens includes cached tokens', () => {
    // What @langchain/openai builds from prompt_tokens=1200 (cached_tokens=1024),
    // completion_tokens=300.
    const usage: UsageMetadata = {
      input_tokens: 1200,
      output_tokens: 300,
      total_tokens: 1500,
      input_token_details: { cache_read: 1024, audio: 0 },
      output_token_details: { reasoning: 0, audio: 0 },
    };
    expect(normalizeUsage(usage)).toEqual({ inputUncached: 176, cacheRead: 1024, cacheWrite: 0, output: 300, reasoning: 0 });
  });

  it('splits Anthropic-style usage as LangChain reports it (cache read and write inside input_tokens)', () => {
    // Anthropic API: input_tokens=50 (uncached), cache_creation_input_tokens=2000,
    // cache_read_input_tokens=3000; @langchain/anthropic reports input_tokens=5050.
    const usage: UsageMetadata = {
      input_tokens: 5050,
      output_tokens: 80,
      total_tokens: 5130,
      input_token_details: { cache_creation: 2000, cache_read: 3000 },
    };
    expect(normalizeUsage(usage)).toEqual({ inputUncached: 50, cacheRead: 3000, cacheWrite: 2000, output: 80, reasoning: 0 });
  });

  it('treats input_tokens as uncached when the cache buckets exceed it (raw Anthropic shape)', () => {
    const usage: UsageMetadata = {
      input_tokens: 50,
      output_tokens: 80,
      total_tokens: 130,
      input_token_details: { cache_creation: 2000, cache_read: 3000 },
    };
    expect(normalizeUsage(usage)).toEqual({ inputUncached: 50, cacheRead: 3000, cacheWrite: 2000, output: 80, reasoning: 0 });
  });

  it('keeps reasoning as a detail of output, not on top of it', () => {
    const usage: UsageMetadata = {
      input_tokens: 40,
      output_tokens: 1000,
      total_tokens: 1040,
      output_token_details: { reasoning: 832 },
    };
    const normalized = normalizeUsage(usage);
    expect(normalized).toEqual({ inputUncached: 40, cacheRead: 0, cacheWrite: 0, output: 1000, reasoning: 832 });
    expect(completionTokens(normalized!)).toBe(1000);
    expect(totalTokens(normalized!)).toBe(1040);
  });

  it('adds reasoning to output when a source reported it outside output_tokens', () => {
    const usage: UsageMetadata = { input_tokens: 10, output_tokens: 5, total_tokens: 15, output_token_details: { reasoning: 20 } };
    expect(normalizeUsage(usage)).toMatchObject({ output: 25, reasoning: 20 });
  });

  it('returns null for missing usage, never zeros', () => {
    expect(normalizeUsage(undefined)).toBeNull();
    expect(normalizeUsage(null)).toBeNull();
  });

  it('returns zeros when the provider reported zero usage', () => {
    expect(normalizeUsage({ input_tokens: 0, output_tokens: 0, total_tokens: 0 })).toEqual(ZERO_USAGE);
  });

  it('ignores negative and non-finite counts', () => {
    const usage = { input_tokens: Number.NaN, output_tokens: -3, total_tokens: 0, input_token_details: { cache_read: -1 } };
    expect(normalizeUsage(usage)).toEqual(ZERO_USAGE);
  });

  it('always produces buckets that the UsageSchema accepts', () => {
    const normalized = normalizeUsage({ input_tokens: 7, output_tokens: 3, total_tokens: 10 });
    expect(UsageSchema.parse(normalized)).toEqual(normalized);
  });
});

describe('usage arithmetic', () => {
  const a = { inputUncached: 10, cacheRead: 20, cacheWrite: 30, output: 40, reasoning: 5 };
  const b = { inputUncached: 1, cacheRead: 2, cacheWrite: 3, output: 4, reasoning: 1 };

  it('counts prompt tokens over all three input buckets', () => {
    expect(promptTokens(a)).toBe(60);
    expect(completionTokens(a)).toBe(40);
    expect(totalTokens(a)).toBe(100);
  });

  it('adds usage bucket by bucket', () => {
    expect(addUsage(a, b)).toEqual({ inputUncached: 11, cacheRead: 22, cacheWrite: 33, output: 44, reasoning: 6 });
    expect(addUsage(ZERO_USAGE, a)).toEqual(a);
  });

  it('keeps ZERO_USAGE immutable', () => {
    expect(Object.isFrozen(ZERO_USAGE)).toBe(true);
  });
});
