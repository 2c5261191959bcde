import type { RunPlan } from './record-path.js';

// 10:59:58.5 — the runs straddle the hour, so their spans land in two buckets.
export const T0 = Date.parse('2026-03-02T10:59:58.500Z');

const usage = (inputUncached: number, cacheRead: number, cacheWrite: number, output: number, reasoning: number) => ({
  inputUncached,
  cacheRead,
  cacheWrite,
  output,
  reasoning,
});

/** Four runs of three users: a tool loop, a failed run with an unpriced model, a cancelled call without usage, two models in one run. */
export const PLANS: readonly (RunPlan & { readonly status: NonNullable<RunPlan['status']> })[] = [
  {
    userId: 'user-a',
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'completed',
    startAt: T0,
    steps: [
      { chat: { usage: usage(1200, 300, 0, 250, 40), costUsd: 0.000345, latencyMs: 820 } },
      { tool: { tool: 'calculator', ok: true, durationMs: 3 } },
      { chat: { usage: usage(1500, 1500, 0, 90, 0), costUsd: 0.0002915, latencyMs: 1430 } },
    ],
  },
  {
    userId: 'user-b',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    status: 'failed',
    startAt: T0 + 100,
    steps: [
      { chat: { usage: null, costUsd: null, latencyMs: 95, errorType: 'RateLimitError' } },
      { chat: { usage: usage(40, 0, 2048, 512, 128), costUsd: null, latencyMs: 3900 } },
      { tool: { tool: 'current_time', ok: false, durationMs: 2 } },
    ],
  },
  {
    userId: 'user-a',
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'cancelled',
    startAt: T0 + 200,
    steps: [{ chat: { usage: null, usageSource: 'missing', costUsd: null, latencyMs: 12_000 } }],
  },
  {
    userId: 'user-a',
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'completed',
    startAt: T0 + 300,
    steps: [
      // A second model within the run: its tokens go to that model's row.
      { chat: { requestModel: 'gpt-4.1', usage: usage(7, 0, 0, 3, 0), costUsd: 0.0000417, latencyMs: 64_000 } },
      { chat: { usage: usage(9, 0, 0, 4, 0), costUsd: 0.0000101, latencyMs: 240 } },
    ],
  },
];
