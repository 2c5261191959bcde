import type { Attributes } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Usage } from '../../machines/usage.js';
import {
  decodeCost,
  decodeModelResult,
  decodeRunEnd,
  decodeUsage,
  encodeCost,
  encodeModelResult,
  encodeRunEnd,
  encodeUsage,
  type ModelResultAttributes,
  type RunEndAttributes,
} from '../../otel/run-span-codec.js';
import * as semconv from '../../otel/semconv.js';

const count = fc.integer({ min: 0, max: 2_000_000_000 });
const usageArb: fc.Arbitrary<Usage> = fc
  .record({
    inputUncached: count,
    cacheRead: count,
    cacheWrite: count,
    output: count,
    reasoningShare: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ reasoningShare, ...buckets }) => ({ ...buckets, reasoning: Math.floor(buckets.output * reasoningShare) }));
/** A cost as the pricing produces it: whole 1e-10 USD units. */
const costArb = fc.integer({ min: 0, max: 100_000_000_000_000 }).map((units) => units / 1e10);
const text = fc.string({ minLength: 1, maxLength: 20 });
const orNull = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: null });

const modelResultArb: fc.Arbitrary<ModelResultAttributes> = fc
  .record({
    responseModel: orNull(text),
    usage: orNull(usageArb),
    estimated: fc.boolean(),
    costUsd: orNull(costArb),
    priceId: orNull(text),
    finishReason: orNull(text),
    timeToFirstChunkMs: orNull(fc.integer({ min: 0, max: 600_000 })),
  })
  .map(({ estimated, ...result }) => ({
    ...result,
    usageSource: result.usage === null ? ('missing' as const) : estimated ? ('estimated' as const) : ('provider' as const),
  }));

const runEndArb: fc.Arbitrary<RunEndAttributes> = fc
  .record({
    status: fc.constantFrom('completed', 'failed', 'cancelled', 'timedOut', 'budgetExceeded', 'interrupted'),
    terminalReason: text,
    usage: usageArb,
    costUsd: costArb,
    costUnknown: fc.boolean(),
    usageMissingCalls: fc.nat(50),
    modelCalls: fc.nat(50),
    toolCalls: fc.nat(50),
    error: orNull(text),
    output: orNull(fc.string()),
  })
  // The machine's rule: the run's cost is unknown (null) as soon as one call's price is.
  .map((run) => ({ ...run, costUsd: run.costUnknown ? null : run.costUsd }));

// Through a real SDK span: what processors read is what the span kept of the attributes.
const exporter = new InMemorySpanExporter();
const recorded = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
afterAll(async () => {
  await recorded.shutdown();
});
const throughSpan = (attributes: Attributes): Attributes => {
  exporter.reset();
  const span = recorded.getTracer('codec').startSpan('chat test');
  span.setAttributes(attributes);
  span.end();
  const [ended] = exporter.getFinishedSpans();
  return ended?.attributes ?? {};
};

describe.each(['released', 'latest'] as const)('run span codec, encoding the %s GenAI names', (conventions) => {
  it('decodes the usage it encodes, a missing usage (null) included', () => {
    fc.assert(
      fc.property(orNull(usageArb), (usage) => {
        expect(decodeUsage(encodeUsage(usage, conventions))).toEqual(usage);
        expect(decodeUsage(throughSpan(encodeUsage(usage, conventions)))).toEqual(usage);
      }),
    );
  });

  it('decodes a model call’s response figures as encoded', () => {
    fc.assert(
      fc.property(modelResultArb, (result) => {
        expect(decodeModelResult(throughSpan(encodeModelResult(result, conventions)))).toEqual(result);
      }),
    );
  });

  it('decodes a run’s totals as encoded; an unpriced run’s cost stays unknown', () => {
    fc.assert(
      fc.property(runEndArb, (run) => {
        expect(decodeRunEnd(throughSpan(encodeRunEnd(run, conventions)))).toEqual(run);
      }),
    );
    const unpriced = encodeRunEnd(
      {
        status: 'completed',
        terminalReason: 'completed',
        usage: { inputUncached: 5, cacheRead: 0, cacheWrite: 0, output: 2, reasoning: 0 },
        costUsd: 0.25,
        costUnknown: true,
        usageMissingCalls: 0,
        modelCalls: 2,
        toolCalls: 0,
        error: null,
        output: 'x',
      },
      conventions,
    );
    expect(unpriced[semconv.ATTR_GEN_AI_USAGE_COST]).toBeUndefined();
    expect(decodeRunEnd(unpriced).costUsd).toBeNull();
  });
});

describe('run span codec', () => {
  const call: ModelResultAttributes = {
    responseModel: 'm',
    usage: { inputUncached: 10, cacheRead: 5, cacheWrite: 3, output: 8, reasoning: 2 },
    usageSource: 'provider',
    costUsd: 0.01,
    priceId: 'p',
    finishReason: 'stop',
    timeToFirstChunkMs: 1234,
  };

  it('writes the released names by default: cache_creation, the time to first chunk in ms', () => {
    const attributes = encodeModelResult(call);
    expect(attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]).toBe(3);
    expect(attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS]).toBeUndefined();
    expect(attributes[semconv.ATTR_TIME_TO_FIRST_CHUNK_MS]).toBe(1234);
    expect(attributes[semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]).toBeUndefined();
  });

  it('writes the latest names when told: cache_write, gen_ai.response.time_to_first_chunk in seconds', () => {
    const attributes = encodeModelResult(call, 'latest');
    expect(attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS]).toBe(3);
    expect(attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]).toBeUndefined();
    expect(attributes[semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]).toBe(1.234);
    expect(attributes[semconv.ATTR_TIME_TO_FIRST_CHUNK_MS]).toBeUndefined();
    // 1001 / 1000 * 1000 is not 1001 in floating point: the seconds are read back to the microsecond.
    expect(decodeModelResult(encodeModelResult({ ...call, timeToFirstChunkMs: 1001 }, 'latest')).timeToFirstChunkMs).toBe(1001);
  });

  it('decodes the cost it encodes, an unknown cost (null) included, never as 0', () => {
    fc.assert(
      fc.property(orNull(costArb), (cost) => {
        expect(decodeCost(encodeCost(cost))).toBe(cost);
        expect(decodeCost(throughSpan(encodeCost(cost)))).toBe(cost);
      }),
    );
    expect(encodeCost(null)).toEqual({});
  });

  it('reads a span from elsewhere: absent detail buckets are none, the uncached bucket is derived', () => {
    expect(
      decodeUsage({
        [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 120,
        [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 7,
        [semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 100,
      }),
    ).toEqual({ inputUncached: 20, cacheRead: 100, cacheWrite: 0, output: 7, reasoning: 0 });
  });

  it('reads cache writes under the newest conventions’ name too (gen_ai.usage.cache_write.input_tokens)', () => {
    expect(
      decodeUsage({
        [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 120,
        [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 7,
        [semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS]: 100,
      }),
    ).toEqual({ inputUncached: 20, cacheRead: 0, cacheWrite: 100, output: 7, reasoning: 0 });
  });

  const valid = encodeUsage({ inputUncached: 10, cacheRead: 5, cacheWrite: 1, output: 8, reasoning: 2 });
  const unusable: [string, Attributes][] = [
    ['no token attributes', {}],
    ['no output count', { ...valid, [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: undefined }],
    ['a fractional count', { ...valid, [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 16.5 }],
    ['a negative count', { ...valid, [semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: -5 }],
    ['a string count', { ...valid, [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: '8' }],
    ['buckets that do not add up to the input', { ...valid, [semconv.ATTR_UNCACHED_INPUT_TOKENS]: 11 }],
    [
      'cache above the input',
      {
        [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 3,
        [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 1,
        [semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 4,
      },
    ],
    ['reasoning above the output', { ...valid, [semconv.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: 9 }],
  ];
  for (const [what, attributes] of unusable) {
    it(`decodes unusable usage as missing (null), never repaired: ${what}`, () => {
      expect(decodeUsage(attributes)).toBeNull();
    });
  }

  it('decodes a negative or non-numeric cost as unknown', () => {
    expect(decodeCost({ [semconv.ATTR_GEN_AI_USAGE_COST]: -0.1 })).toBeNull();
    expect(decodeCost({ [semconv.ATTR_GEN_AI_USAGE_COST]: '0.1' })).toBeNull();
    expect(decodeCost({ [semconv.ATTR_GEN_AI_USAGE_COST]: Number.NaN })).toBeNull();
  });
});
