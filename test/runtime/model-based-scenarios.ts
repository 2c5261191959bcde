import { createActor } from 'xstate';
import { workflowRunMachine } from '../../machines/workflow-run.js';
import type {
  ModelCallResult,
  TerminalReason,
  TerminalStatus,
  WorkflowRunEvent,
  WorkflowRunInput,
} from '../../machines/workflow-run-types.js';
import type { Usage } from '../../machines/usage.js';
import { computeCost, type PriceRow } from '../../src/providers/pricing.js';
import type { ProviderUsageReport, ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { pathInput, sampleEventName, type RunPath, type SampleEventName } from '../machines/paths.js';

/*
 * Compiles the machine paths that xstate/graph generates (test/machines/paths.ts) into
 * runs of the real runtime: a script for the scripted chat model of a `chat_with_tools`
 * graph, plus a stop the driver performs while a model call is in flight. A path that
 * no such run can produce is rejected with a reason.
 */

/** The runtime limits the scenarios are compiled for (TOOL_CALL_LIMIT, MODEL_MAX_RETRIES). */
export const SCENARIO_LIMITS = pathInput.limits;

export type StopKind = 'cancel' | 'timeout' | 'interrupt';

export const STOP_STATUS: Record<StopKind, TerminalStatus> = {
  cancel: 'cancelled',
  timeout: 'timedOut',
  interrupt: 'interrupted',
};

export const STOP_REASON: Record<StopKind, TerminalReason> = {
  cancel: 'cancelled',
  timeout: 'timeout',
  interrupt: 'interrupted',
};

/** Expected totals, from the pure machine run over the path with shipped prices. */
export type ExpectedTotals = {
  readonly usage: Usage;
  readonly costUsd: number;
  readonly costUnknown: boolean;
  readonly usageMissingCalls: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
};

export type Scenario = {
  /** Identifies the run the scenario makes: equal keys, identical runs. */
  readonly key: string;
  /** The first path that compiled to this scenario. */
  readonly description: string;
  /** How many generated paths compiled to it. */
  paths: number;
  readonly turns: ScriptedTurn[];
  /**
   * A stop the driver performs once the run is in `running.callingModel` for the
   * model call attempt `attempt` (0-based, as `chatter.model_call.sequence` counts).
   */
  readonly stop: { readonly kind: StopKind; readonly attempt: number } | null;
  readonly expected: {
    readonly status: TerminalStatus;
    readonly terminalReason: TerminalReason | null;
    /** Without a stop: the final totals. With a stop: the totals before it (kept by the stop). */
    readonly totals: ExpectedTotals;
    /** Usage of every model response accounted, in order (null: none reported). */
    readonly responses: (Usage | null)[];
  };
};

export type SkipReason =
  | 'ends before a final state'
  | 'run.failed (a graph error) cannot be scripted'
  | 'stop while queued'
  | 'stop while stepping'
  | 'stop while retrying'
  | 'stop while calling a tool'
  | 'the graph calls the model first'
  | 'model call right after a response (the graph runs tools or ends)'
  | 'tool call without a response asking for it'
  | 'tool call past the limit (the graph answers it without running it)'
  | 'run.finished not right after a final response'
  | 'budget by cost: not reached at shipped prices'
  | 'budget refusal: decided by the database (driven in test/chat/budgets.test.ts)';

export type Compilation = {
  readonly generated: number;
  readonly realizable: number;
  readonly scenarios: Scenario[];
  readonly skipped: Map<SkipReason, number>;
};

const STOP_KIND: Partial<Record<SampleEventName, StopKind>> = {
  cancel: 'cancel',
  cancelWithPartial: 'cancel',
  timeout: 'timeout',
  timeoutWithPartial: 'timeout',
  interrupt: 'interrupt',
  interruptWithPartial: 'interrupt',
};

const RESPONSES = new Set<SampleEventName>(['respondedPriced', 'respondedUsageMissing', 'respondedPriceUnknown', 'respondedExpensive']);

/** What a model call follows in the graph: the start, a retry's backoff, the tools node. */
const MODEL_CALL_AFTER = new Set<SampleEventName>(['runStart', 'failedTransient', 'toolReturnedOk', 'toolReturnedError']);

const TOOL_EXPRESSION: Partial<Record<SampleEventName, string>> = {
  toolReturnedOk: '6*7',
  toolReturnedError: '1/0',
};

/** LangChain's usage_metadata for non-overlapping buckets: input and output are inclusive. */
export const toProviderUsage = (usage: Usage): ProviderUsageReport => ({
  input_tokens: usage.inputUncached + usage.cacheRead + usage.cacheWrite,
  output_tokens: usage.output,
  input_token_details: { cache_read: usage.cacheRead, cache_creation: usage.cacheWrite },
  output_token_details: { reasoning: usage.reasoning },
});

/** A model call the driver stops: it would answer long after any test gives up. */
const SLOW_TURN: ScriptedTurn = { content: 'This answer is never delivered.', latencyMs: 60_000 };

const scenarioInput: WorkflowRunInput = { ...pathInput, workflow: 'chat_with_tools' };

/**
 * The same result, costed the way the runtime costs it: with the shipped price of the
 * run's model. A result the generator left unpriced (`priceUnknown`) is priced too,
 * since the runtime prices by the request's model; only a result without usage keeps
 * a null cost (the runtime cannot cost tokens it was not told about).
 */
const repriced = (result: ModelCallResult, price: PriceRow): ModelCallResult => ({
  ...result,
  costUsd: result.usage === null ? null : computeCost(result.usage, price),
  priceId: result.usage === null ? null : price.id,
});

const repricedEvent = (event: WorkflowRunEvent, price: PriceRow): WorkflowRunEvent => {
  if (event.type === 'model.responded') return { ...event, result: repriced(event.result, price) };
  // The runtime's stops always carry its own estimate; the oracle stops without one.
  if (event.type === 'cancel' || event.type === 'timeout' || event.type === 'interrupt') {
    const { partial: _partial, ...stop } = event;
    return stop;
  }
  return event;
};

type Compiled = { scenario: Omit<Scenario, 'key' | 'paths'> } | { skip: SkipReason };

const stateKey = (value: unknown): string => JSON.stringify(value);

/** The reason a path cannot be a `chat_with_tools` run, or null when it can. */
const unrealizable = (names: SampleEventName[]): SkipReason | null => {
  let toolCalls = 0;
  for (const [index, name] of names.entries()) {
    const previous = index === 0 ? null : names[index - 1]!;
    const stop = STOP_KIND[name];
    if (stop !== undefined) {
      if (previous === 'modelStarted') continue;
      if (previous === null) return 'stop while queued';
      if (previous === 'failedTransient') return 'stop while retrying';
      if (previous === 'toolStarted') return 'stop while calling a tool';
      return 'stop while stepping';
    }
    if (previous === 'runStart' && name !== 'modelStarted') return 'the graph calls the model first';
    switch (name) {
      case 'runFailed':
        return 'run.failed (a graph error) cannot be scripted';
      case 'budgetRefused':
        return 'budget refusal: decided by the database (driven in test/chat/budgets.test.ts)';
      case 'runStart':
        break; // the generator only offers it first
      case 'modelStarted':
        if (previous !== null && MODEL_CALL_AFTER.has(previous)) break;
        return 'model call right after a response (the graph runs tools or ends)';
      case 'toolStarted':
        if (previous === null || !RESPONSES.has(previous)) return 'tool call without a response asking for it';
        if (toolCalls >= SCENARIO_LIMITS.toolCallLimit) {
          return 'tool call past the limit (the graph answers it without running it)';
        }
        toolCalls += 1;
        break;
      case 'runFinished':
        if (previous === null || !RESPONSES.has(previous)) return 'run.finished not right after a final response';
        break;
      default:
        break; // responses and failures follow model.started; tool results follow tool.started
    }
  }
  return null;
};

const compilePath = (path: RunPath, price: PriceRow): Compiled => {
  if (path.state.status !== 'done') return { skip: 'ends before a final state' };
  const names = path.events.map((event) => {
    const name = sampleEventName(event);
    if (name === undefined) throw new Error(`path ${path.description} holds an event that is not a sample event`);
    return name;
  });
  const reason = unrealizable(names);
  if (reason !== null) return { skip: reason };

  // The oracle: the pure machine over the same events, costed with the shipped price.
  // Where a cost budget decides differently at that price, the path is not this run.
  const generator = createActor(workflowRunMachine, { input: pathInput }).start();
  const oracle = createActor(workflowRunMachine, { input: scenarioInput }).start();
  const stopIndex = names.findIndex((name) => STOP_KIND[name] !== undefined);
  const responses: (Usage | null)[] = [];
  for (const [index, event] of path.events.entries()) {
    if (index === stopIndex) break; // the runtime's stop carries an estimate: checked apart
    generator.send(event);
    oracle.send(repricedEvent(event, price));
    if (event.type === 'model.responded') responses.push(event.result.usage);
    if (stateKey(generator.getSnapshot().value) !== stateKey(oracle.getSnapshot().value)) {
      return { skip: 'budget by cost: not reached at shipped prices' };
    }
  }
  const snapshot = oracle.getSnapshot();
  const { context } = snapshot;
  if (stopIndex === -1 && snapshot.status !== 'done') return { skip: 'budget by cost: not reached at shipped prices' };

  const turns: ScriptedTurn[] = [];
  let attempts = 0;
  for (const [index, name] of names.entries()) {
    const event = path.events[index]!;
    const next = names[index + 1];
    if (name === 'modelStarted') attempts += 1;
    if (event.type === 'model.responded') {
      const expression = next === 'toolStarted' ? TOOL_EXPRESSION[names[index + 2]!] : undefined;
      if (next === 'toolStarted' && expression === undefined) throw new Error(`no tool result after ${path.description}`);
      turns.push({
        content: expression === undefined ? 'The answer is 42.' : '',
        ...(expression === undefined ? {} : { toolCalls: [{ name: 'calculator', args: { expression } }] }),
        usage: event.result.usage === null ? null : toProviderUsage(event.result.usage),
      });
    } else if (name === 'failedTransient') {
      turns.push({ error: { message: 'rate limited', status: 429, retryAfterMs: 0 } });
    } else if (name === 'failedFatal') {
      turns.push({ error: { message: 'invalid api key', status: 401 } });
    }
  }
  const stopKind = stopIndex === -1 ? undefined : STOP_KIND[names[stopIndex]!];
  if (stopKind !== undefined) turns.push(SLOW_TURN);

  const totals: ExpectedTotals = {
    usage: context.usage,
    costUsd: context.costUsd,
    costUnknown: context.costUnknown,
    usageMissingCalls: context.usageMissingCalls,
    modelCalls: context.modelCalls,
    toolCalls: context.toolCalls,
  };
  return {
    scenario: {
      description: path.description,
      turns,
      stop: stopKind === undefined ? null : { kind: stopKind, attempt: attempts - 1 },
      expected: {
        status: stopKind === undefined ? (context.status as TerminalStatus) : STOP_STATUS[stopKind],
        terminalReason: stopKind === undefined ? context.terminalReason : STOP_REASON[stopKind],
        totals,
        responses,
      },
    },
  };
};

/**
 * Compiles paths into distinct runtime scenarios. `price` is the shipped price of the
 * runs' model, which the runtime costs every call with.
 *
 * @throws Error when two paths compile to the same run but expect different outcomes.
 */
export const compileScenarios = (paths: readonly RunPath[], price: PriceRow): Compilation => {
  const byKey = new Map<string, Scenario>();
  const skipped = new Map<SkipReason, number>();
  let realizable = 0;
  for (const path of paths) {
    const compiled = compilePath(path, price);
    if ('skip' in compiled) {
      skipped.set(compiled.skip, (skipped.get(compiled.skip) ?? 0) + 1);
      continue;
    }
    realizable += 1;
    const { scenario } = compiled;
    const key = JSON.stringify([scenario.turns, scenario.stop]);
    const existing = byKey.get(key);
    if (existing === undefined) {
      byKey.set(key, { ...scenario, key, paths: 1 });
    } else if (JSON.stringify(existing.expected) !== JSON.stringify(scenario.expected)) {
      throw new Error(`${existing.description} and ${scenario.description} make the same run but expect different outcomes`);
    } else {
      existing.paths += 1;
    }
  }
  return { generated: paths.length, realizable, scenarios: [...byKey.values()], skipped };
};
