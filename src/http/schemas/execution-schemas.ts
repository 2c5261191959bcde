/**
 * The contract's `WorkflowExecutionResponse` (openapi-full.json), plus the fields this
 * service adds to it (its own run status, tokens by kind, ids to follow a run), and the
 * page of them `GET /api/v1/workflows/executions` answers: `{items, total, offset, limit}`,
 * the keys the original backend answers and the frontend reads.
 */

const nullable = (type: 'string' | 'integer' | 'object', title: string, description: string, format?: 'date-time') =>
  ({
    anyOf: [
      type === 'object' ? { type, additionalProperties: true } : { type, ...(format === undefined ? {} : { format }) },
      { type: 'null' },
    ],
    title,
    description,
  }) as const;

export const WorkflowExecutionResponseSchema = {
  $id: 'WorkflowExecutionResponse',
  type: 'object',
  title: 'WorkflowExecutionResponse',
  description: 'Schema for workflow execution response.',
  required: ['id', 'definition_id', 'owner_id', 'status'],
  properties: {
    input_data: nullable('object', 'Input Data', 'Execution input data'),
    id: { type: 'string', title: 'Id', description: 'Execution ID' },
    definition_id: {
      type: 'string',
      title: 'Definition Id',
      description: 'The stored workflow definition the run executed, else the workflow it used (chat, chat_with_tools, custom)',
    },
    owner_id: { type: 'string', title: 'Owner Id', description: 'Owner user ID' },
    status: {
      type: 'string',
      title: 'Status',
      description: 'Execution status: pending, running, completed, failed (also a timeout, a budget stop or an interruption) or cancelled',
    },
    started_at: nullable('string', 'Started At', 'Execution start time', 'date-time'),
    completed_at: nullable('string', 'Completed At', 'Execution completion time', 'date-time'),
    execution_time_ms: nullable('integer', 'Execution Time Ms', 'Execution time in milliseconds'),
    output_data: nullable('object', 'Output Data', 'Execution output data'),
    error_message: nullable('string', 'Error Message', 'Error message if failed'),
    tokens_used: { type: 'integer', title: 'Tokens Used', description: 'Total tokens used', default: 0 },
    cost: { type: 'number', title: 'Cost', description: 'Total cost (USD; 0 with cost_unknown when a price was unknown)', default: 0 },
    execution_log: {
      anyOf: [{ type: 'array', items: { type: 'object', additionalProperties: true } }, { type: 'null' }],
      title: 'Execution Log',
      description: 'Detailed execution log entries',
    },
    debug_info: nullable('object', 'Debug Info', 'Debug information when debug mode enabled'),
    created_at: nullable('string', 'Created At', 'Creation timestamp', 'date-time'),
    updated_at: nullable('string', 'Updated At', 'Last update timestamp', 'date-time'),
    // This service's own fields.
    run_status: {
      type: 'string',
      description: 'The run status as recorded: queued, running, completed, failed, cancelled, timedOut, budgetExceeded, interrupted',
    },
    terminal_reason: { type: ['string', 'null'] },
    workflow: { type: 'string', description: 'The workflow the run used' },
    conversation_id: { type: ['string', 'null'] },
    provider: { type: ['string', 'null'] },
    model: { type: ['string', 'null'] },
    prompt_tokens: { type: 'integer', description: 'Every input token, cached ones included' },
    completion_tokens: { type: 'integer' },
    cost_unknown: { type: 'boolean', description: 'A model call of the run had no known price: `cost` leaves it out' },
    usage_missing: { type: 'boolean', description: 'A model call of the run reported no usage' },
    model_call_count: { type: 'integer' },
    tool_call_count: { type: 'integer' },
    correlation_id: { type: 'string' },
    trace_id: { type: ['string', 'null'] },
  },
} as const;

export const WorkflowExecutionPageSchema = {
  type: 'object',
  required: ['items', 'total', 'offset', 'limit'],
  properties: {
    items: { type: 'array', items: { $ref: 'WorkflowExecutionResponse#' } },
    total: { type: 'integer', description: 'Executions in all pages' },
    offset: { type: 'integer' },
    limit: { type: 'integer' },
  },
} as const;

export const EXECUTION_SCHEMAS = [WorkflowExecutionResponseSchema] as const;
