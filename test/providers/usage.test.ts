import type { UsageMetadata } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import { completionTokens, totalTokens, zeroUsage } from '../../machines/usage.js';
import { normalizeUsage, usageReportProblem } from '../../src/providers/usage.js';

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

  it('returns null for missing usage, never zeros', () => {
    expect(normalizeUsage(undefined)).toBeNull();
    expect(normalizeUsage(null)).toBeNull();
  });

  it('returns zeros when the provider reported zero usage', () => {
    expect(normalizeUsage({ input_tokens: 0, output_tokens: 0, total_tokens: 0 })).toEqual(zeroUsage());
  });

  it('counts absent cache and reasoning details as none (prompt_tokens_details not sent)', () => {
    // What @langchain/openai builds when the details objects are missing.
    const usage = {
      input_tokens: 12,
      output_tokens: 3,
      total_tokens: 15,
      input_token_details: { audio: undefined, cache_read: undefined },
      output_token_details: { reasoning: undefined },
    } as unknown as UsageMetadata;
    expect(normalizeUsage(usage)).toEqual({ inputUncached: 12, cacheRead: 0, cacheWrite: 0, output: 3, reasoning: 0 });
  });

  // Each of these is a report whose numbers can't all be true: no guess is made, the call is flagged instead.
  const unusable: [string, Record<string, unknown>][] = [
    ['no token counts at all (a JSON response without usage)', { input_token_details: { audio: undefined, cache_read: undefined } }],
    ['no output_tokens', { input_tokens: 10 }],
    ['negative input', { input_tokens: -3, output_tokens: 2 }],
    ['negative output', { input_tokens: 3, output_tokens: -2 }],
    ['fractional input', { input_tokens: 10.5, output_tokens: 2 }],
    ['NaN', { input_tokens: Number.NaN, output_tokens: 2 }],
    ['Infinity', { input_tokens: Number.POSITIVE_INFINITY, output_tokens: 2 }],
    ['a string count', { input_tokens: '12', output_tokens: 2 }],
    ['a string concatenated by the client ("0" + "12")', { input_tokens: '012', output_tokens: 2 }],
    ['an unsafe integer', { input_tokens: 2 ** 60, output_tokens: 2 }],
    ['a negative cache read', { input_tokens: 10, output_tokens: 2, input_token_details: { cache_read: -1 } }],
    ['a string cache read', { input_tokens: 10, output_tokens: 2, input_token_details: { cache_read: '4' } }],
    ['a fractional reasoning count', { input_tokens: 10, output_tokens: 2, output_token_details: { reasoning: 0.5 } }],
    ['cached tokens above the input', { input_tokens: 50, output_tokens: 80, input_token_details: { cache_read: 60 } }],
    [
      'cache read + write above the input',
      { input_tokens: 50, output_tokens: 80, input_token_details: { cache_read: 30, cache_creation: 30 } },
    ],
    ['reasoning above the output', { input_tokens: 10, output_tokens: 5, output_token_details: { reasoning: 20 } }],
    ['a total that is not input + output', { input_tokens: 10, output_tokens: 5, total_tokens: 16 }],
    ['a string total', { input_tokens: 10, output_tokens: 5, total_tokens: '15' }],
  ];
  for (const [what, report] of unusable) {
    it(`returns null for an unusable report: ${what}`, () => {
      expect(usageReportProblem(report as unknown as UsageMetadata)).toEqual(expect.any(String));
      expect(normalizeUsage(report as unknown as UsageMetadata)).toBeNull();
    });
  }

  it('accepts a report without total_tokens, and cache buckets that fill the whole input', () => {
    const usage = { input_tokens: 10, output_tokens: 5, input_token_details: { cache_read: 6, cache_creation: 4 } } as UsageMetadata;
    expect(usageReportProblem(usage)).toBeNull();
    expect(normalizeUsage(usage)).toEqual({ inputUncached: 0, cacheRead: 6, cacheWrite: 4, output: 5, reasoning: 0 });
  });
});
