import type { EventRow } from '../repositories/events-repository.js';

/**
 * An event as the Chatter frontend reads it from `GET /api/v1/events/stream`: it drops
 * any event without string `id`, `type` and `timestamp`, routes on the dotted `type`
 * (`workflow.started`, …) and on `metadata.category` / `metadata.priority`.
 */
export type FrontendEvent = {
  readonly id: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
  readonly timestamp: string;
  readonly user_id?: string;
  readonly metadata: Record<string, unknown>;
};

/** What the frontend's event of a stored type is called and what its `data` adds. */
type Mapping = { readonly type: string; readonly data: (row: EventRow) => Record<string, unknown> };

const workflowId = (row: EventRow) => ({ workflow_id: row.run_id });
const terminalReason = (row: EventRow): string | undefined => {
  const reason = row.data['chatter.run.terminal_reason'];
  return typeof reason === 'string' ? reason : undefined;
};

/** A run that ended in an error status (analytics' ERROR_RUN_STATUSES): `workflow.failed` with our status. */
const failed = (status: string, message: string): Mapping => ({
  type: 'workflow.failed',
  data: (row) => ({
    ...workflowId(row),
    status,
    failed_at: row.created_at,
    error_message: terminalReason(row) ?? message,
    error_code: status,
  }),
});

/** A step of a running run: the frontend's `workflow.status` with the step it reached. */
const step = (name: string): Mapping => ({
  type: 'workflow.status',
  data: (row) => ({ ...workflowId(row), status: 'running', current_step: name }),
});

/** An accounting warning of a run: the frontend's `system.alert`. */
const alert = (severity: 'info' | 'warning' | 'error', message: (row: EventRow) => string): Mapping => ({
  type: 'system.alert',
  data: (row) => ({ ...workflowId(row), message: message(row), severity }),
});

const text = (value: unknown, fallback: string): string => (typeof value === 'string' && value !== '' ? value : fallback);

/** The frontend's names for the stored run lifecycle types (category `workflow`). */
const WORKFLOW_EVENTS: Readonly<Record<string, Mapping>> = {
  workflow_started: { type: 'workflow.started', data: (row) => ({ ...workflowId(row), started_at: row.created_at }) },
  workflow_completed: {
    type: 'workflow.completed',
    data: (row) => ({ ...workflowId(row), status: 'completed', completed_at: row.created_at }),
  },
  workflow_failed: failed('failed', 'The run failed'),
  workflow_timed_out: failed('timedOut', 'The run timed out'),
  budget_exceeded: failed('budgetExceeded', 'A budget was used up'),
  workflow_interrupted: failed('interrupted', 'The run was interrupted'),
  // The client's choice, not an error (as analytics count it): a status change.
  workflow_cancelled: {
    type: 'workflow.status',
    data: (row) => ({ ...workflowId(row), status: 'cancelled', current_step: 'cancelled', cancelled_at: row.created_at }),
  },
  model_response: step('model_response'),
  tool_called: step('tool_called'),
  retry_scheduled: step('retry_scheduled'),
  usage_missing: alert(
    'warning',
    (row) => `A model call of ${text(row.data['gen_ai.request.model'], 'the run')} reported no usage: it is not counted`,
  ),
  price_unknown: alert(
    'warning',
    (row) => `No price is known for ${text(row.data['gen_ai.response.model'], 'the model')}: the run's cost is unknown`,
  ),
  run_record_rejected: alert('error', () => 'The database refused the run’s record: it was dead-lettered'),
};

/** Test events (`POST /api/v1/events/test-event`) are alerts, as the original backend sends them. */
const SYSTEM_EVENTS: Readonly<Record<string, Mapping>> = {
  test_event: { type: 'system.alert', data: () => ({ severity: 'info' }) },
};

/**
 * The frontend's name of a stored event: its dotted names where one exists, otherwise
 * `<category>.<type>` (security events are `security.login_failed`, …).
 */
const mappingOf = (row: Pick<EventRow, 'category' | 'type'>): Mapping | undefined =>
  row.category === 'workflow' ? WORKFLOW_EVENTS[row.type] : row.category === 'system' ? SYSTEM_EVENTS[row.type] : undefined;

export const frontendTypeOf = (row: Pick<EventRow, 'category' | 'type'>): string => mappingOf(row)?.type ?? `${row.category}.${row.type}`;

/**
 * A stored event in the frontend's shape. `data` keeps the stored data and adds the
 * fields the frontend's event of that type reads; `metadata` carries what the row says
 * beside it (its `seq`, which is also the SSE `id:`, category, priority, ids and the stored type).
 */
export const toFrontendEvent = (row: EventRow): FrontendEvent => {
  const mapping = mappingOf(row);
  return {
    id: row.id,
    type: frontendTypeOf(row),
    data: { ...row.data, ...mapping?.data(row) },
    timestamp: row.created_at,
    ...(row.user_id === null ? {} : { user_id: row.user_id }),
    metadata: {
      seq: row.seq,
      category: row.category,
      priority: row.priority,
      event_type: row.type,
      run_id: row.run_id,
      conversation_id: row.conversation_id,
      correlation_id: row.correlation_id,
      source_system: 'chatter',
    },
  };
};
