import { describe, expect, it } from 'vitest';
import { createActor, transition } from 'xstate';
import { workflowRunMachine } from '../../machines/workflow-run.js';
import type {
  ModelCallResult,
  TerminalReason,
  TerminalStatus,
  WorkflowRunEvent,
  WorkflowRunInput,
} from '../../machines/workflow-run-types.js';
import type { Usage } from '../../machines/usage.js';
import { generateShortestPaths, generateSimplePaths, pathInput, sampleEvents as ev, sampleResults, type RunPath } from './paths.js';

const EFFECTS = [
  'onRunStarted',
  'onModelCallStarted',
  'onModelCallEnded',
  'onUsageMissing',
  'onPriceUnknown',
  'onModelCallFailed',
  'onRetryScheduled',
  'onToolCallStarted',
  'onToolCallEnded',
  'onBudgetExceeded',
  'abortWork',
  'onRunEnded',
] as const;
type Effect = (typeof EFFECTS)[number];

const unlimitedInput: WorkflowRunInput = {
  ...pathInput,
  limits: { toolCallLimit: 5, maxRetries: 2 },
  budget: { tokensRemaining: null, costRemainingUsd: null },
};

/** A started actor whose effects record their params, in order. */
const startRun = (input: WorkflowRunInput = unlimitedInput) => {
  const effects: { name: Effect; params: unknown }[] = [];
  const record = (name: Effect) => (_: unknown, params: unknown) => {
    effects.push({ name, params });
  };
  const machine = workflowRunMachine.provide({
    actions: Object.fromEntries(EFFECTS.map((name) => [name, record(name)])),
  });
  const actor = createActor(machine, { input }).start();
  return {
    actor,
    effects,
    send: (...events: WorkflowRunEvent[]) => events.forEach((event) => actor.send(event)),
    snapshot: () => actor.getSnapshot(),
    calls: (name: Effect) => effects.filter((effect) => effect.name === name).map((effect) => effect.params),
  };
};

const withBudget = (tokensRemaining: number | null, costRemainingUsd: number | null): WorkflowRunInput => ({
  ...unlimitedInput,
  budget: { tokensRemaining, costRemainingUsd },
});

const respond = (result: ModelCallResult): WorkflowRunEvent => ({ type: 'model.responded', callId: 'model-call', result });

describe('workflowRunMachine transitions', () => {
  it('starts queued and runs on run.start', () => {
    const run = startRun();
    expect(run.snapshot().value).toBe('queued');
    run.send(ev.runStart);
    expect(run.snapshot().value).toEqual({ running: 'stepping' });
    expect(run.snapshot().context).toMatchObject({ status: 'running', startedAt: ev.runStart.at });
    expect(run.calls('onRunStarted')).toHaveLength(1);
  });

  it('enters callingModel on model.started and reports the attempt', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted);
    expect(run.snapshot().value).toEqual({ running: 'callingModel' });
    expect(run.snapshot().context.activeModelCallId).toBe('model-call');
    expect(run.calls('onModelCallStarted')).toEqual([
      { callId: 'model-call', provider: 'openai', model: 'gpt-test', at: ev.modelStarted.at, attempt: 1 },
    ]);
  });

  it('returns to stepping on model.responded and reports the call after accounting it', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced);
    const { context } = run.snapshot();
    expect(run.snapshot().value).toEqual({ running: 'stepping' });
    expect(context).toMatchObject({ modelCalls: 1, activeModelCallId: null, costUsd: 0.0003123457 });
    expect(run.calls('onModelCallEnded')).toEqual([{ callId: 'model-call', result: sampleResults.priced, partial: false }]);
    expect(run.calls('onUsageMissing')).toEqual([]);
    expect(run.calls('onPriceUnknown')).toEqual([]);
  });

  it('sums the usage of a 3-model-call tool loop bucket by bucket', () => {
    const run = startRun();
    run.send(
      ev.runStart,
      ev.modelStarted,
      ev.respondedPriced,
      ev.toolStarted,
      ev.toolReturnedOk,
      ev.modelStarted,
      ev.respondedExpensive,
      ev.toolStarted,
      ev.toolReturnedError,
      ev.modelStarted,
      ev.respondedPriced,
      ev.runFinished,
    );
    const expectedUsage: Usage = { inputUncached: 90, cacheRead: 65, cacheWrite: 20, output: 85, reasoning: 24 };
    expect(run.snapshot().value).toBe('completed');
    expect(run.snapshot().context).toMatchObject({ usage: expectedUsage, modelCalls: 3, toolCalls: 2, toolErrors: 1 });
    expect(run.snapshot().output).toEqual({
      status: 'completed',
      terminalReason: 'completed',
      usage: expectedUsage,
      costUsd: 0.0013246914,
      costUnknown: false,
      modelCalls: 3,
      toolCalls: 2,
      error: null,
      output: 'The answer is 42.',
    });
  });

  it('counts a response without usage as missing, not as zero tokens', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, ev.respondedUsageMissing);
    const { context } = run.snapshot();
    expect(context.usage).toEqual(sampleResults.priced.usage);
    // The cost is the priced call's: nothing to price is not an unknown price.
    expect(context).toMatchObject({ usageMissingCalls: 1, modelCalls: 2, costUnknown: false, costUsd: 0.0003123457 });
    const missing = { callId: 'model-call', result: sampleResults.usageMissing, partial: false };
    expect(run.calls('onUsageMissing')).toEqual([missing]);
    expect(run.calls('onPriceUnknown')).toEqual([]);
    expect(run.calls('onModelCallEnded')).toHaveLength(2);
  });

  it('sums rounded costs and marks the cost unknown when a price is missing', () => {
    const run = startRun();
    run.send(
      ev.runStart,
      ev.modelStarted,
      respond({ ...sampleResults.priced, costUsd: 0.1 }),
      ev.modelStarted,
      respond({ ...sampleResults.priced, costUsd: 0.2 }),
      ev.modelStarted,
      ev.respondedPriceUnknown,
    );
    const { context } = run.snapshot();
    // 0.1 + 0.2 is 0.30000000000000004 in floating point: the sum is rounded too.
    expect(context.costUsd).toBe(0.3);
    expect(context.costUnknown).toBe(true);
    expect(context.usageMissingCalls).toBe(0);
    expect(run.calls('onPriceUnknown')).toEqual([{ callId: 'model-call', result: sampleResults.priceUnknown, partial: false }]);
  });

  it('ends in budgetExceeded by tokens and keeps the usage of the exceeding response', () => {
    const run = startRun(withBudget(200, null));
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, ev.respondedPriced);
    const snapshot = run.snapshot();
    expect(snapshot.value).toBe('budgetExceeded');
    expect(snapshot.context).toMatchObject({
      terminalReason: 'budget_tokens',
      usage: { inputUncached: 80, cacheRead: 60, cacheWrite: 20, output: 80, reasoning: 24 },
      costUsd: 0.0006246914,
      modelCalls: 2,
      endedAt: sampleResults.priced.at,
    });
    expect(run.calls('onModelCallEnded')).toHaveLength(2);
    expect(run.calls('onBudgetExceeded')).toEqual([{ reason: 'budget_tokens' }]);
    expect(run.calls('abortWork')).toEqual([{ status: 'budgetExceeded' }]);
    expect(run.effects.map((effect) => effect.name).slice(-4)).toEqual(['onModelCallEnded', 'onBudgetExceeded', 'abortWork', 'onRunEnded']);
  });

  it('ends in budgetExceeded by cost and keeps the cost of the exceeding response', () => {
    const run = startRun(withBudget(null, 0.001));
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, ev.respondedExpensive);
    expect(run.snapshot().value).toBe('budgetExceeded');
    expect(run.snapshot().context).toMatchObject({ terminalReason: 'budget_cost', costUsd: 0.0010123457, modelCalls: 2 });
    expect(run.snapshot().context.usage.output).toBe(45);
    expect(run.calls('onBudgetExceeded')).toEqual([{ reason: 'budget_cost' }]);
  });

  it('ends in budgetExceeded when the next call cannot reserve, with the refusing budget as reason', () => {
    const run = startRun(withBudget(null, null));
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.toolStarted, ev.toolReturnedOk);
    run.send({ type: 'budget.refused', reason: 'budget_tokens', at: 1_700_000_000_800 });
    const snapshot = run.snapshot();
    expect(snapshot.value).toBe('budgetExceeded');
    expect(snapshot.context).toMatchObject({
      terminalReason: 'budget_tokens',
      modelCalls: 1,
      usage: sampleResults.priced.usage,
      endedAt: 1_700_000_000_800,
    });
    expect(snapshot.output?.status).toBe('budgetExceeded');
    expect(run.calls('onBudgetExceeded')).toEqual([{ reason: 'budget_tokens' }]);
    expect(run.calls('abortWork')).toEqual([{ status: 'budgetExceeded' }]);
    expect(run.calls('onModelCallStarted')).toHaveLength(1);
  });

  it('ends a retrying run in budgetExceeded when its retry cannot reserve', () => {
    const run = startRun(withBudget(null, null));
    run.send(ev.runStart, ev.modelStarted, ev.failedTransient, ev.budgetRefused);
    expect(run.snapshot().value).toBe('budgetExceeded');
    expect(run.snapshot().context).toMatchObject({ terminalReason: 'budget_cost', modelCalls: 0 });
    expect(run.calls('onBudgetExceeded')).toEqual([{ reason: 'budget_cost' }]);
  });

  it('ignores a refusal while a model or tool call is in flight (reservations come before calls)', () => {
    const run = startRun(withBudget(null, null));
    run.send(ev.runStart, ev.modelStarted, ev.budgetRefused);
    expect(run.snapshot().value).toEqual({ running: 'callingModel' });
    run.send(ev.respondedPriced, ev.toolStarted, ev.budgetRefused);
    expect(run.snapshot().value).toEqual({ running: 'callingTool' });
    expect(run.calls('onBudgetExceeded')).toEqual([]);
  });

  it('allows totals that reach the budget exactly', () => {
    const run = startRun(withBudget(200, 0.0003123457));
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, ev.respondedPriceUnknown);
    expect(run.snapshot().value).toEqual({ running: 'stepping' });
  });

  it('never exceeds an unlimited budget', () => {
    const run = startRun();
    const huge = { ...sampleResults.priced, usage: { ...sampleResults.expensive.usage!, output: 1e9 }, costUsd: 1e6 };
    run.send(ev.runStart, ev.modelStarted, respond(huge), ev.runFinished);
    expect(run.snapshot().value).toBe('completed');
  });

  it('retries a transient failure and resets retries on success', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.failedTransient);
    expect(run.snapshot().value).toEqual({ running: 'retrying' });
    expect(run.snapshot().context).toMatchObject({ retries: 1, totalRetries: 1, activeModelCallId: null });
    expect(run.calls('onModelCallFailed')).toEqual([
      { callId: 'model-call', error: ev.failedTransient.error, at: ev.failedTransient.at, willRetry: true },
    ]);
    expect(run.calls('onRetryScheduled')).toEqual([{ retry: 1, retryAfterMs: 1000 }]);

    run.send(ev.modelStarted);
    expect(run.snapshot().value).toEqual({ running: 'callingModel' });
    expect(run.calls('onModelCallStarted').at(-1)).toMatchObject({ attempt: 2 });

    run.send(ev.respondedPriced);
    expect(run.snapshot().value).toEqual({ running: 'stepping' });
    expect(run.snapshot().context).toMatchObject({ retries: 0, totalRetries: 1, modelCalls: 1 });
  });

  it('fails once the retries of a model call are exhausted', () => {
    const run = startRun({ ...unlimitedInput, limits: { toolCallLimit: 5, maxRetries: 1 } });
    run.send(ev.runStart, ev.modelStarted, ev.failedTransient, ev.modelStarted, ev.failedTransient);
    expect(run.snapshot().value).toBe('failed');
    expect(run.snapshot().context).toMatchObject({
      terminalReason: 'retries_exhausted',
      error: 'rate limited',
      totalRetries: 1,
    });
    expect(run.calls('onModelCallFailed').at(-1)).toMatchObject({ willRetry: false });
    expect(run.calls('abortWork')).toEqual([{ status: 'failed' }]);
  });

  it('fails at once on a non-transient model failure', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.failedFatal);
    expect(run.snapshot().value).toBe('failed');
    expect(run.snapshot().context).toMatchObject({
      terminalReason: 'non_transient_error',
      error: 'invalid api key',
      retries: 0,
    });
    expect(run.calls('onRetryScheduled')).toEqual([]);
  });

  it('enters callingTool and counts a tool error without failing the run', () => {
    const run = startRun();
    run.send(ev.runStart, ev.toolStarted);
    expect(run.snapshot().value).toEqual({ running: 'callingTool' });
    expect(run.snapshot().context).toMatchObject({ toolCalls: 1, activeToolCallId: 'tool-call' });
    run.send(ev.toolReturnedError);
    expect(run.snapshot().value).toEqual({ running: 'stepping' });
    expect(run.snapshot().context).toMatchObject({ toolErrors: 1, activeToolCallId: null });
    expect(run.calls('onToolCallEnded')).toEqual([
      { callId: 'tool-call', tool: 'calculator', ok: false, resultSize: 0, error: 'division by zero', at: ev.toolReturnedError.at },
    ]);
  });

  it('fails with tool_call_limit when a tool call would pass the limit', () => {
    const run = startRun(pathInput);
    run.send(ev.runStart, ev.toolStarted, ev.toolReturnedOk, ev.toolStarted, ev.toolReturnedOk, ev.toolStarted);
    expect(run.snapshot().value).toBe('failed');
    expect(run.snapshot().context).toMatchObject({ terminalReason: 'tool_call_limit', toolCalls: 2 });
    expect(run.calls('onToolCallStarted')).toHaveLength(2);
  });

  it('completes on run.finished with the output and aborts nothing', () => {
    const run = startRun();
    run.send(ev.runStart, ev.runFinished);
    expect(run.snapshot().value).toBe('completed');
    expect(run.snapshot().context).toMatchObject({ output: 'The answer is 42.', endedAt: ev.runFinished.at });
    expect(run.calls('abortWork')).toEqual([]);
    expect(run.calls('onRunEnded')).toEqual([{ status: 'completed' }]);
  });

  it.each([
    ['stepping', [ev.runStart]],
    ['callingModel', [ev.runStart, ev.modelStarted]],
    ['retrying', [ev.runStart, ev.modelStarted, ev.failedTransient]],
    ['callingTool', [ev.runStart, ev.toolStarted]],
  ])('fails on run.failed from %s', (_, before) => {
    const run = startRun();
    run.send(...before, ev.runFailed);
    expect(run.snapshot().value).toBe('failed');
    expect(run.snapshot().context).toMatchObject({ terminalReason: 'error', error: 'graph node threw' });
    expect(run.calls('abortWork')).toEqual([{ status: 'failed' }]);
  });

  it.each([
    ['cancel', ev.cancelWithPartial, 'cancelled', 'cancelled'],
    ['timeout', ev.timeoutWithPartial, 'timedOut', 'timeout'],
    ['interrupt', ev.interruptWithPartial, 'interrupted', 'interrupted'],
  ] as const)('accounts the in-flight call of a %s with a partial result', (_, stop, status, reason) => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, stop);
    const partial = stop.partial.result;
    const { context } = run.snapshot();
    expect(run.snapshot().value).toBe(status);
    expect(context).toMatchObject({ terminalReason: reason, modelCalls: 2, endedAt: stop.at });
    expect(context.usage.inputUncached).toBe(40 + (partial.usage?.inputUncached ?? 0));
    expect(run.calls('onModelCallEnded').at(-1)).toEqual({ ...stop.partial, partial: true });
    expect(run.effects.map((effect) => effect.name).slice(-2)).toEqual(['abortWork', 'onRunEnded']);
  });

  it('keeps the id of a call stopped without a partial result', () => {
    const run = startRun();
    run.send(ev.runStart, ev.modelStarted, ev.cancel);
    expect(run.snapshot().value).toBe('cancelled');
    expect(run.snapshot().context).toMatchObject({ modelCalls: 0, activeModelCallId: 'model-call' });
    expect(run.calls('onModelCallEnded')).toEqual([]);
  });

  it.each([
    [ev.cancel, 'cancelled'],
    [ev.timeout, 'timedOut'],
    [ev.interrupt, 'interrupted'],
  ] as const)('ends a queued run on $0.type', (stop, status) => {
    const run = startRun();
    run.send(stop);
    expect(run.snapshot().value).toBe(status);
    expect(run.snapshot().context.startedAt).toBeNull();
    expect(run.calls('onRunStarted')).toEqual([]);
    expect(run.calls('onRunEnded')).toEqual([{ status }]);
  });

  it('ignores events the current state does not accept', () => {
    const run = startRun();
    run.send(ev.modelStarted, ev.runFinished);
    expect(run.snapshot().value).toBe('queued');
    run.send(ev.runStart, ev.modelStarted, ev.runFinished, ev.toolStarted, ev.runStart);
    expect(run.snapshot().value).toEqual({ running: 'callingModel' });
    expect(run.effects.map((effect) => effect.name)).toEqual(['onRunStarted', 'onModelCallStarted']);
  });

  const toFinal: [TerminalStatus, WorkflowRunEvent[]][] = [
    ['completed', [ev.runStart, ev.runFinished]],
    ['failed', [ev.runStart, ev.runFailed]],
    ['cancelled', [ev.runStart, ev.cancel]],
    ['timedOut', [ev.runStart, ev.timeout]],
    ['budgetExceeded', [ev.runStart, ev.modelStarted, ev.respondedPriced, ev.modelStarted, ev.respondedPriced]],
    ['interrupted', [ev.runStart, ev.interrupt]],
  ];

  it.each(toFinal)('accepts nothing once %s and reports the end exactly once', (status, events) => {
    const ended: TerminalStatus[] = [];
    const machine = workflowRunMachine.provide({ actions: { onRunEnded: (_, params) => ended.push(params.status) } });
    const actor = createActor(machine, { input: pathInput }).start();
    events.forEach((event) => actor.send(event));
    const final = actor.getSnapshot();
    expect(final.status).toBe('done');
    expect(final.value).toBe(status);
    // The pure transition shows that no event changes a final state or runs an action.
    for (const event of Object.values(ev)) {
      const [next, actions] = transition(workflowRunMachine, final, event);
      expect(next.value).toBe(status);
      expect(next.context).toEqual(final.context);
      expect(actions).toEqual([]);
    }
    expect(ended).toEqual([status]);
  });
});

// ── Model-based: walk every generated path and check the invariants at every step ──

type Totals = { usage: Usage; costUsd: number; costUnknown: boolean; usageMissingCalls: number; modelCalls: number };

/** The results an event reports, per the contract: a response or a stopped call's partial. */
const reportedResult = (event: WorkflowRunEvent): ModelCallResult | null => {
  if (event.type === 'model.responded') return event.result;
  if ('partial' in event && event.partial) return event.partial.result;
  return null;
};

const noTotals = (): Totals => ({
  usage: { inputUncached: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 },
  costUsd: 0,
  costUnknown: false,
  usageMissingCalls: 0,
  modelCalls: 0,
});

// Written independently of the machine's helpers, from docs/run-contract.md: costs add
// exactly, as whole 1e-10 USD units (safe integers at these magnitudes).
const units = (usd: number) => Math.round(usd * 1e10);
const addResult = (totals: Totals, result: ModelCallResult): Totals => {
  const usage: { -readonly [bucket in keyof Usage]: number } = { ...totals.usage };
  if (result.usage !== null) for (const bucket of Object.keys(usage) as (keyof Usage)[]) usage[bucket] += result.usage[bucket];
  return {
    usage,
    costUsd: result.costUsd === null ? totals.costUsd : (units(totals.costUsd) + units(result.costUsd)) / 1e10,
    costUnknown: totals.costUnknown || (result.usage !== null && result.costUsd === null),
    usageMissingCalls: totals.usageMissingCalls + (result.usage === null ? 1 : 0),
    modelCalls: totals.modelCalls + 1,
  };
};

/** Walks `path` on a fresh actor; returns every invariant broken, with the step it broke at. */
const violationsAlong = (path: RunPath): string[] => {
  const run = startRun(pathInput);
  const violations: string[] = [];
  let finalValue: string | null = null;
  let expected = noTotals();
  let unpriced = 0;
  path.events.forEach((event, index) => {
    run.actor.send(event);
    const result = reportedResult(event);
    if (result !== null) {
      expected = addResult(expected, result);
      if (result.usage !== null && result.costUsd === null) unpriced += 1;
    }
    const snapshot = run.snapshot();
    const { context } = snapshot;
    const broken = (what: string) => violations.push(`${path.description} [step ${index + 1}]: ${what}`);

    if (finalValue !== null && snapshot.value !== finalValue) broken(`left final state ${finalValue}`);
    if (snapshot.status === 'done') finalValue ??= snapshot.value as string;

    const ended = run.calls('onRunEnded');
    const aborted = run.calls('abortWork');
    if (finalValue === null) {
      if (ended.length > 0 || aborted.length > 0) broken('onRunEnded/abortWork before a final state');
    } else {
      if (JSON.stringify(ended) !== JSON.stringify([{ status: finalValue }])) broken(`onRunEnded calls ${JSON.stringify(ended)}`);
      if (aborted.length !== (finalValue === 'completed' ? 0 : 1)) broken(`abortWork called ${aborted.length} times`);
      if (snapshot.output?.status !== finalValue) broken(`output status ${snapshot.output?.status}`);
    }

    const actual: Totals = {
      usage: context.usage,
      costUsd: context.costUsd,
      costUnknown: context.costUnknown,
      usageMissingCalls: context.usageMissingCalls,
      modelCalls: context.modelCalls,
    };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      broken(`totals ${JSON.stringify(actual)} ≠ expected ${JSON.stringify(expected)}`);
    }
    if (run.calls('onModelCallEnded').length !== expected.modelCalls) broken('onModelCallEnded count ≠ accounted calls');
    if (run.calls('onUsageMissing').length !== expected.usageMissingCalls) broken('onUsageMissing count ≠ calls without usage');
    if (run.calls('onPriceUnknown').length !== unpriced) broken('onPriceUnknown count ≠ calls without price');

    const { tokensRemaining, costRemainingUsd } = pathInput.budget;
    const tokens = context.usage.inputUncached + context.usage.cacheRead + context.usage.cacheWrite + context.usage.output;
    const overBudget =
      (tokensRemaining !== null && tokens > tokensRemaining) || (costRemainingUsd !== null && context.costUsd > costRemainingUsd);
    if (snapshot.status === 'active' && overBudget) broken('still running over budget');
  });
  const end = run.snapshot();
  if (JSON.stringify([end.value, end.context]) !== JSON.stringify([path.state.value, path.state.context])) {
    violations.push(`${path.description}: actor ends in ${JSON.stringify(end.value)}, generator in ${JSON.stringify(path.state.value)}`);
  }
  return violations;
};

const terminalReasons = (paths: RunPath[]) =>
  new Set(paths.map((path) => path.state.context.terminalReason).filter((reason) => reason !== null));

const ALL_REASONS: TerminalReason[] = [
  'completed',
  'error',
  'retries_exhausted',
  'non_transient_error',
  'tool_call_limit',
  'cancelled',
  'timeout',
  'interrupted',
  'budget_tokens',
  'budget_cost',
];

describe('workflowRunMachine along generated paths', () => {
  it('keeps the run invariants at every step of every shortest path', () => {
    const paths = generateShortestPaths();
    console.log(`workflow-run: ${paths.length} shortest paths`);
    expect([...terminalReasons(paths)].sort()).toEqual([...ALL_REASONS].sort());
    const violations = paths.flatMap(violationsAlong);
    expect(violations.length, violations.slice(0, 10).join('\n')).toBe(0);
  }, 120_000);

  it('keeps the run invariants at every step of every simple path', () => {
    const paths = generateSimplePaths();
    console.log(`workflow-run: ${paths.length} simple paths`);
    expect(terminalReasons(paths).size).toBeGreaterThanOrEqual(8);
    const violations = paths.flatMap(violationsAlong);
    expect(violations.length, violations.slice(0, 10).join('\n')).toBe(0);
  }, 120_000);
});
