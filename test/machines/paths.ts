import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { SnapshotFrom } from 'xstate';
import { workflowRunMachine } from '../../machines/workflow-run.js';
import type { ModelCallResult, ModelRespondedEvent, WorkflowRunEvent, WorkflowRunInput } from '../../machines/workflow-run-types.js';
import type { Usage } from '../../machines/usage.js';

/**
 * Paths through the workflow-run machine for model-based tests. The machine test walks
 * them on the machine; src/runtime tests can drive the real runtime along the same
 * event sequences (each event is one of the typed `sampleEvents` below).
 */

export type WorkflowRunSnapshot = SnapshotFrom<typeof workflowRunMachine>;

/** Small limits and a budget that a few sample responses exceed, so paths stay finite. */
export const pathInput: WorkflowRunInput = {
  runId: 'run-paths',
  workflow: 'chat',
  conversationId: 'conversation-paths',
  userId: 'user-paths',
  correlationId: 'correlation-paths',
  limits: { toolCallLimit: 2, maxRetries: 1 },
  // Two priced responses (240 tokens) exceed the tokens, priced + price-unknown (200)
  // reach them exactly; priced + expensive (0.00101 USD) exceed the cost.
  budget: { tokensRemaining: 200, costRemainingUsd: 0.001 },
};

const CALL_ID = 'model-call';
const TOOL_CALL_ID = 'tool-call';
const T0 = 1_700_000_000_000;

const usage = (inputUncached: number, cacheRead: number, cacheWrite: number, output: number, reasoning: number): Usage => ({
  inputUncached,
  cacheRead,
  cacheWrite,
  output,
  reasoning,
});

const result = (fields: Pick<ModelCallResult, 'usage' | 'costUsd'> & Partial<ModelCallResult>): ModelCallResult => ({
  provider: 'openai',
  requestModel: 'gpt-test',
  responseModel: 'gpt-test-2025',
  usageSource: fields.usage === null ? 'missing' : 'provider',
  priceId: fields.costUsd === null ? null : 'price-1',
  finishReason: 'stop',
  hasToolCalls: false,
  latencyMs: 250,
  timeToFirstChunkMs: 90,
  at: T0 + 500,
  ...fields,
});

/** Model call results used by the sample responses and the stopped calls' partials. */
export const sampleResults = {
  /** 120 tokens in every bucket, a cost that needs rounding. */
  priced: result({ usage: usage(40, 30, 10, 40, 12), costUsd: 0.00031234567891, hasToolCalls: true }),
  /** The provider sent no usage: flagged, never counted as 0; no usage, no price. */
  usageMissing: result({ usage: null, costUsd: null, finishReason: null }),
  /** Usage known, no price for the model. */
  priceUnknown: result({ usage: usage(60, 0, 0, 20, 0), costUsd: null, responseModel: 'unpriced-model' }),
  /** Few tokens, a high price. */
  expensive: result({ usage: usage(10, 5, 0, 5, 0), costUsd: 0.0007 }),
  /** What a stopped stream had reported so far. */
  partial: result({ usage: usage(25, 15, 0, 3, 1), costUsd: 0.00004, finishReason: null }),
} satisfies Record<string, ModelCallResult>;

const responded = (r: ModelCallResult): ModelRespondedEvent => ({ type: 'model.responded', callId: CALL_ID, result: r });

/** The finite event alphabet of the generated paths, by name. */
export const sampleEvents = {
  runStart: { type: 'run.start', at: T0 },
  modelStarted: { type: 'model.started', callId: CALL_ID, provider: 'openai', model: 'gpt-test', at: T0 + 100 },
  respondedPriced: responded(sampleResults.priced),
  respondedUsageMissing: responded(sampleResults.usageMissing),
  respondedPriceUnknown: responded(sampleResults.priceUnknown),
  respondedExpensive: responded(sampleResults.expensive),
  failedTransient: {
    type: 'model.failed',
    callId: CALL_ID,
    error: { message: 'rate limited', transient: true, retryAfterMs: 1000, status: 429 },
    at: T0 + 600,
  },
  failedFatal: {
    type: 'model.failed',
    callId: CALL_ID,
    error: { message: 'invalid api key', transient: false, status: 401 },
    at: T0 + 600,
  },
  toolStarted: { type: 'tool.started', callId: TOOL_CALL_ID, tool: 'calculator', args: { expression: '6*7' }, at: T0 + 700 },
  toolReturnedOk: { type: 'tool.returned', callId: TOOL_CALL_ID, tool: 'calculator', ok: true, resultSize: 2, at: T0 + 710 },
  toolReturnedError: {
    type: 'tool.returned',
    callId: TOOL_CALL_ID,
    tool: 'calculator',
    ok: false,
    resultSize: 0,
    error: 'division by zero',
    at: T0 + 710,
  },
  /** The next call could not reserve its worst case (sent before the call: stepping or retrying). */
  budgetRefused: { type: 'budget.refused', reason: 'budget_cost', at: T0 + 650 },
  runFinished: { type: 'run.finished', output: 'The answer is 42.', at: T0 + 900 },
  runFailed: { type: 'run.failed', error: { message: 'graph node threw' }, at: T0 + 900 },
  cancel: { type: 'cancel', reason: 'user pressed stop', at: T0 + 950 },
  cancelWithPartial: {
    type: 'cancel',
    reason: 'user pressed stop',
    at: T0 + 950,
    partial: { callId: CALL_ID, result: sampleResults.partial },
  },
  timeout: { type: 'timeout', at: T0 + 960 },
  timeoutWithPartial: { type: 'timeout', at: T0 + 960, partial: { callId: CALL_ID, result: sampleResults.usageMissing } },
  interrupt: { type: 'interrupt', reason: 'shutdown', at: T0 + 970 },
  interruptWithPartial: {
    type: 'interrupt',
    reason: 'shutdown',
    at: T0 + 970,
    partial: { callId: CALL_ID, result: sampleResults.priceUnknown },
  },
} satisfies Record<string, WorkflowRunEvent>;

export type SampleEventName = keyof typeof sampleEvents;

const nameByEvent = new Map<WorkflowRunEvent, SampleEventName>(
  (Object.entries(sampleEvents) as [SampleEventName, WorkflowRunEvent][]).map(([name, event]) => [event, name]),
);

/** The name of a sample event (paths reuse the sample objects themselves). */
export const sampleEventName = (event: WorkflowRunEvent): SampleEventName | undefined => nameByEvent.get(event);

/**
 * What a generator explores: an event alphabet and a cap on model calls. Usage-missing
 * responses add no tokens, so the budget alone does not end a run of them: no new model
 * call is offered once `maxModelCalls` responses were accounted.
 */
export type PathModel = { events: readonly SampleEventName[]; maxModelCalls: number };

/** Every sample event, up to 3 model calls: one shortest path to each of ~7,500 states. */
export const shortestPathModel: PathModel = {
  events: Object.keys(sampleEvents) as SampleEventName[],
  maxModelCalls: 3,
};

/**
 * Every event type once (plus two response kinds), up to 2 model calls. xstate's simple
 * paths search all paths once per reachable state, so the full alphabet would take minutes.
 */
export const simplePathModel: PathModel = {
  events: [
    'runStart',
    'modelStarted',
    'respondedPriced',
    'respondedUsageMissing',
    'respondedExpensive',
    'failedTransient',
    'failedFatal',
    'toolStarted',
    'toolReturnedOk',
    'runFinished',
    'runFailed',
    'cancelWithPartial',
    'timeoutWithPartial',
    'interrupt',
  ],
  maxModelCalls: 2,
};

export type RunPath = {
  /** The sample event names, e.g. `runStart → modelStarted → respondedPriced → runFinished`. */
  description: string;
  /** Events to send in order to a fresh run created with `pathInput`. */
  events: WorkflowRunEvent[];
  /** The machine's snapshot at the end of the path. */
  state: WorkflowRunSnapshot;
};

type GraphPath = ReturnType<typeof getShortestPaths<typeof workflowRunMachine>>[number];

const toRunPath = (path: GraphPath): RunPath => {
  // Step 0 is the initial state (xstate.init); every later step holds the event sent.
  const events = path.steps.slice(1).map((step) => step.event);
  return {
    description: events.map((event) => sampleEventName(event) ?? event.type).join(' → ') || '(initial)',
    events,
    state: path.state,
  };
};

// Same key as xstate's default (value + context), memoised per snapshot object: the
// traversals serialise the same snapshots over and over.
const serializedStates = new WeakMap<WorkflowRunSnapshot, string>();
const serializeState = (snapshot: WorkflowRunSnapshot): string => {
  let key = serializedStates.get(snapshot);
  if (key === undefined) {
    key = JSON.stringify({ value: snapshot.value, context: snapshot.context });
    serializedStates.set(snapshot, key);
  }
  return key;
};

const traversal = (model: PathModel) => ({
  input: pathInput,
  events: model.events.map((name): WorkflowRunEvent => sampleEvents[name]),
  serializeState,
  // A partial result only exists while a model call is in flight.
  filterEvents: (snapshot: WorkflowRunSnapshot, event: WorkflowRunEvent): boolean => {
    if ('partial' in event && event.partial) return snapshot.matches({ running: 'callingModel' });
    if (event.type === 'model.started') return snapshot.context.modelCalls < model.maxModelCalls;
    return true;
  },
});

/** One shortest path to every reachable state (states are told apart by value and context). */
export const generateShortestPaths = (model: PathModel = shortestPathModel): RunPath[] =>
  getShortestPaths(workflowRunMachine, traversal(model)).map(toRunPath);

/** Every simple path to every reachable state. */
export const generateSimplePaths = (model: PathModel = simplePathModel): RunPath[] =>
  getSimplePaths(workflowRunMachine, traversal(model)).map(toRunPath);
