/**
 * The contract's workflow definition and template schemas (openapi-full.json), as the
 * original API publishes them, with bounds on what a request may hold. Definitions are
 * the frontend builder's nodes and edges (src/workflows/builder-graph.ts translates them).
 */

import { MAX_WORKFLOW_EDGES as MAX_EDGES, MAX_WORKFLOW_NODES as MAX_NODES } from '../../workflows/builder-graph.js';

const timestamps = {
  created_at: { type: 'string', format: 'date-time', description: 'Creation time' },
  updated_at: { type: 'string', format: 'date-time', description: 'Last change' },
} as const;

/** Fields a definition's create body and answer share (the contract's own). */
const definitionFields = {
  name: { type: 'string', maxLength: 255, minLength: 1, description: 'Workflow name' },
  description: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Workflow description' },
  nodes: { items: { $ref: 'WorkflowNode#' }, type: 'array', maxItems: MAX_NODES, description: 'Workflow nodes' },
  edges: { items: { $ref: 'WorkflowEdge#' }, type: 'array', maxItems: MAX_EDGES, description: 'Workflow edges' },
  metadata: { anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }], description: 'Additional metadata' },
  tags: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Workflow tags' },
  template_id: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Source template ID if created from template' },
} as const;

/** Fields a template's create body and answer share (the contract's own). */
const templateFields = {
  name: { type: 'string', maxLength: 255, minLength: 1, description: 'Template name' },
  description: { type: 'string', minLength: 1, description: 'Template description' },
  category: { type: 'string', description: 'Template category', default: 'custom' },
  default_params: { additionalProperties: true, type: 'object', description: 'Default parameters' },
  required_tools: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Required tools' },
  required_retrievers: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Required retrievers' },
  tags: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Template tags' },
  is_public: { type: 'boolean', description: 'Whether template is public', default: false },
} as const;

export const WorkflowNodeDataSchema = {
  $id: 'WorkflowNodeData',
  properties: {
    label: { type: 'string', description: 'Node display label' },
    nodeType: { type: 'string', description: 'Type of the node' },
    config: { anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }], description: 'Node configuration' },
  },
  type: 'object',
  required: ['label', 'nodeType'],
  description: 'Schema for workflow node data.',
} as const;

export const WorkflowNodeSchema = {
  $id: 'WorkflowNode',
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128, description: 'Unique node identifier' },
    type: { type: 'string', maxLength: 64, description: 'Node type' },
    position: { additionalProperties: { type: 'number' }, type: 'object', description: 'Node position (x, y)' },
    data: { $ref: 'WorkflowNodeData#', description: 'Node data' },
    selected: { anyOf: [{ type: 'boolean' }, { type: 'null' }], description: 'Whether node is selected', default: false },
    dragging: { anyOf: [{ type: 'boolean' }, { type: 'null' }], description: 'Whether node is being dragged', default: false },
  },
  type: 'object',
  required: ['id', 'type', 'position', 'data'],
  description: 'Schema for a workflow node.',
} as const;

export const WorkflowEdgeDataSchema = {
  $id: 'WorkflowEdgeData',
  properties: {
    condition: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Edge condition' },
    label: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Edge label' },
  },
  type: 'object',
  description: 'Schema for workflow edge data.',
} as const;

export const WorkflowEdgeSchema = {
  $id: 'WorkflowEdge',
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128, description: 'Unique edge identifier' },
    source: { type: 'string', maxLength: 128, description: 'Source node ID' },
    target: { type: 'string', maxLength: 128, description: 'Target node ID' },
    sourceHandle: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Source handle ID' },
    targetHandle: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Target handle ID' },
    type: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Edge type', default: 'default' },
    data: { anyOf: [{ $ref: 'WorkflowEdgeData#' }, { type: 'null' }], description: 'Edge data' },
  },
  type: 'object',
  required: ['id', 'source', 'target'],
  description: 'Schema for a workflow edge.',
} as const;

export const WorkflowDefinitionCreateSchema = {
  $id: 'WorkflowDefinitionCreate',
  properties: {
    ...definitionFields,
    is_public: { type: 'boolean', description: 'Whether workflow is publicly visible', default: false },
  },
  type: 'object',
  required: ['name', 'nodes', 'edges'],
  description: 'Schema for creating a workflow definition.',
} as const;

export const WorkflowDefinitionUpdateSchema = {
  $id: 'WorkflowDefinitionUpdate',
  properties: {
    name: { anyOf: [{ type: 'string', maxLength: 255, minLength: 1 }, { type: 'null' }], description: 'Workflow name' },
    description: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Workflow description' },
    nodes: {
      anyOf: [{ items: { $ref: 'WorkflowNode#' }, type: 'array', maxItems: MAX_NODES }, { type: 'null' }],
      description: 'Workflow nodes',
    },
    edges: {
      anyOf: [{ items: { $ref: 'WorkflowEdge#' }, type: 'array', maxItems: MAX_EDGES }, { type: 'null' }],
      description: 'Workflow edges',
    },
    metadata: { anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }], description: 'Additional metadata' },
  },
  type: 'object',
  description: 'Schema for updating a workflow definition.',
} as const;

export const WorkflowDefinitionResponseSchema = {
  $id: 'WorkflowDefinitionResponse',
  properties: {
    ...definitionFields,
    is_public: { type: 'boolean', description: 'Whether workflow is public', default: false },
    id: { type: 'string', description: 'Unique node identifier' },
    owner_id: { type: 'string', description: 'Owner user ID' },
    version: { type: 'integer', description: 'Workflow version', default: 1 },
    ...timestamps,
  },
  type: 'object',
  required: ['name', 'nodes', 'edges', 'id', 'owner_id'],
  description: 'Schema for workflow definition response.',
} as const;

export const WorkflowDefinitionsResponseSchema = {
  $id: 'WorkflowDefinitionsResponse',
  properties: {
    definitions: { items: { $ref: 'WorkflowDefinitionResponse#' }, type: 'array', description: 'Workflow definitions' },
    total_count: { type: 'integer', description: 'Total number of definitions' },
  },
  type: 'object',
  required: ['definitions', 'total_count'],
  description: 'Schema for workflow definitions list response.',
} as const;

export const WorkflowDeleteResponseSchema = {
  $id: 'WorkflowDeleteResponse',
  properties: {
    message: { type: 'string', description: 'Deletion confirmation message' },
    workflow_id: { type: 'string', description: 'ID of the deleted workflow' },
  },
  type: 'object',
  required: ['message', 'workflow_id'],
  description: 'Response schema for workflow deletion.',
} as const;

export const WorkflowDefinitionFromTemplateRequestSchema = {
  $id: 'WorkflowDefinitionFromTemplateRequest',
  properties: {
    template_id: { type: 'string', description: 'Template ID to instantiate' },
    name_suffix: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Optional suffix for the definition name' },
    user_input: {
      anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }],
      description: 'User input to merge with template default params',
    },
    is_temporary: { type: 'boolean', description: 'Whether this is a temporary definition for execution', default: true },
  },
  type: 'object',
  required: ['template_id'],
  description: 'Schema for creating a workflow definition from a template.',
} as const;

export const WorkflowValidationResponseSchema = {
  $id: 'WorkflowValidationResponse',
  properties: {
    is_valid: { type: 'boolean', description: 'Whether workflow is valid' },
    errors: { items: { $ref: 'ValidationError#' }, type: 'array', description: 'Validation errors' },
    warnings: { items: { $ref: 'ValidationError#' }, type: 'array', description: 'Validation warnings' },
    suggestions: { items: { type: 'string' }, type: 'array', description: 'Validation suggestions' },
  },
  type: 'object',
  required: ['is_valid', 'errors', 'warnings', 'suggestions'],
  description: 'Schema for workflow validation response.',
} as const;

export const WorkflowExecutionRequestSchema = {
  $id: 'WorkflowExecutionRequest',
  properties: {
    input_data: { anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }], description: 'Execution input data' },
    definition_id: { type: 'string', description: 'Workflow definition ID' },
    debug_mode: { type: 'boolean', description: 'Enable debug mode for detailed logging', default: false },
  },
  type: 'object',
  required: ['definition_id'],
  description: 'Schema for starting a workflow execution.',
} as const;

export const ComplexityMetricsSchema = {
  $id: 'ComplexityMetrics',
  properties: {
    score: { type: 'integer', description: 'Overall complexity score' },
    node_count: { type: 'integer', description: 'Number of nodes' },
    edge_count: { type: 'integer', description: 'Number of edges' },
    depth: { type: 'integer', description: 'Maximum path depth' },
    branching_factor: { type: 'number', description: 'Average branching factor' },
    loop_complexity: { type: 'integer', description: 'Loop complexity score', default: 0 },
    conditional_complexity: { type: 'integer', description: 'Conditional complexity score', default: 0 },
  },
  type: 'object',
  required: ['score', 'node_count', 'edge_count', 'depth', 'branching_factor'],
  description: 'Schema for workflow complexity metrics.',
} as const;

export const BottleneckInfoSchema = {
  $id: 'BottleneckInfo',
  properties: {
    node_id: { type: 'string', description: 'Node ID with bottleneck' },
    node_type: { type: 'string', description: 'Node type' },
    reason: { type: 'string', description: 'Bottleneck reason' },
    severity: { type: 'string', description: 'Bottleneck severity (low/medium/high)' },
    suggestions: { items: { type: 'string' }, type: 'array', description: 'Optimization suggestions' },
  },
  type: 'object',
  required: ['node_id', 'node_type', 'reason', 'severity', 'suggestions'],
  description: 'Schema for bottleneck information.',
} as const;

export const OptimizationSuggestionSchema = {
  $id: 'OptimizationSuggestion',
  properties: {
    type: { type: 'string', description: 'Suggestion type' },
    description: { type: 'string', description: 'Suggestion description' },
    impact: { type: 'string', description: 'Expected impact (low/medium/high)' },
    node_ids: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Affected node IDs' },
  },
  type: 'object',
  required: ['type', 'description', 'impact'],
  description: 'Schema for optimization suggestions.',
} as const;

export const WorkflowAnalyticsResponseSchema = {
  $id: 'WorkflowAnalyticsResponse',
  properties: {
    complexity: { $ref: 'ComplexityMetrics#', description: 'Complexity metrics' },
    bottlenecks: { items: { $ref: 'BottleneckInfo#' }, type: 'array', description: 'Identified bottlenecks' },
    optimization_suggestions: { items: { $ref: 'OptimizationSuggestion#' }, type: 'array', description: 'Optimization suggestions' },
    execution_paths: { type: 'integer', description: 'Number of possible execution paths' },
    estimated_execution_time_ms: { anyOf: [{ type: 'integer' }, { type: 'null' }], description: 'Estimated execution time' },
    risk_factors: { items: { type: 'string' }, type: 'array', description: 'Identified risk factors' },
    total_execution_time_ms: { type: 'integer', description: 'Total execution time' },
    error: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Error message if failed' },
    started_at: { type: 'string', format: 'date-time', description: 'Execution start time' },
    completed_at: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }], description: 'Execution completion time' },
    // This service's own field: the figures of the definition's runs, read from their rows.
    runs: {
      type: 'object',
      description: "The caller's runs of this definition, from the run rows every report sums",
      properties: {
        total: { type: 'integer' },
        completed: { type: 'integer' },
        errors: { type: 'integer', description: 'Failed, timed out, budget exceeded or interrupted' },
        cancelled: { type: 'integer' },
        live: { type: 'integer' },
        error_rate: { type: ['number', 'null'], description: 'errors over ended runs' },
        prompt_tokens: { type: 'integer' },
        completion_tokens: { type: 'integer' },
        total_tokens: { type: 'integer' },
        cost: { type: 'number', description: 'USD; runs with an unknown price count what is known' },
        cost_unknown_runs: { type: 'integer' },
        model_calls: { type: 'integer' },
        tool_calls: { type: 'integer' },
        p50_duration_ms: { type: ['integer', 'null'] },
        p95_duration_ms: { type: ['integer', 'null'] },
      },
    },
  },
  type: 'object',
  required: [
    'complexity',
    'bottlenecks',
    'optimization_suggestions',
    'execution_paths',
    'risk_factors',
    'total_execution_time_ms',
    'started_at',
  ],
  description: 'Schema for workflow analytics response.',
} as const;

export const WorkflowTemplateCreateSchema = {
  $id: 'WorkflowTemplateCreate',
  properties: {
    ...templateFields,
    workflow_definition_id: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Source workflow definition ID' },
    base_template_id: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Base template ID for derivation' },
  },
  type: 'object',
  required: ['name', 'description'],
  description: 'Schema for creating a workflow template.',
} as const;

export const WorkflowTemplateUpdateSchema = {
  $id: 'WorkflowTemplateUpdate',
  properties: {
    name: { anyOf: [{ type: 'string', maxLength: 255, minLength: 1 }, { type: 'null' }], description: 'Template name' },
    description: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }], description: 'Template description' },
    category: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Template category' },
    default_params: { anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }], description: 'Default parameters' },
    required_tools: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Required tools' },
    required_retrievers: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Required retrievers' },
    tags: { anyOf: [{ items: { type: 'string' }, type: 'array' }, { type: 'null' }], description: 'Template tags' },
    is_public: { anyOf: [{ type: 'boolean' }, { type: 'null' }], description: 'Whether template is public' },
  },
  type: 'object',
  description: 'Schema for updating a workflow template.',
} as const;

export const WorkflowTemplateResponseSchema = {
  $id: 'WorkflowTemplateResponse',
  properties: {
    ...templateFields,
    id: { type: 'string', description: 'Unique node identifier' },
    owner_id: { type: 'string', description: 'Owner user ID' },
    base_template_id: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Base template ID' },
    is_builtin: { type: 'boolean', description: 'Whether template is built-in', default: false },
    version: { type: 'integer', description: 'Template version', default: 1 },
    is_latest: { type: 'boolean', description: 'Whether this is the latest version', default: true },
    rating: { anyOf: [{ type: 'number' }, { type: 'null' }], description: 'Average rating' },
    rating_count: { type: 'integer', description: 'Number of ratings', default: 0 },
    usage_count: { type: 'integer', description: 'Usage count', default: 0 },
    success_rate: { anyOf: [{ type: 'number' }, { type: 'null' }], description: 'Success rate' },
    config_hash: { type: 'string', description: 'Configuration hash' },
    estimated_complexity: { anyOf: [{ type: 'integer' }, { type: 'null' }], description: 'Estimated complexity score' },
    // This service's own fields: the template's graph and where it came from.
    nodes: { type: 'array', items: { $ref: 'WorkflowNode#' }, description: 'The graph in the builder format' },
    edges: { type: 'array', items: { $ref: 'WorkflowEdge#' } },
    workflow_definition_id: { type: ['string', 'null'], description: 'The definition the graph was copied from' },
    ...timestamps,
  },
  type: 'object',
  required: ['name', 'description', 'id', 'owner_id', 'config_hash'],
  description: 'Schema for workflow template response.',
} as const;

export const WorkflowTemplatesResponseSchema = {
  $id: 'WorkflowTemplatesResponse',
  properties: {
    templates: { items: { $ref: 'WorkflowTemplateResponse#' }, type: 'array', description: 'Workflow templates' },
    total_count: { type: 'integer', description: 'Total number of templates' },
  },
  type: 'object',
  required: ['templates', 'total_count'],
  description: 'Schema for workflow templates list response.',
} as const;

export const WorkflowTemplateExportResponseSchema = {
  $id: 'WorkflowTemplateExportResponse',
  properties: {
    template: { additionalProperties: true, type: 'object', description: 'Complete template data including metadata' },
    export_format: { type: 'string', description: 'Export format version', default: 'json' },
    exported_at: { type: 'string', format: 'date-time', description: 'Export timestamp' },
  },
  type: 'object',
  required: ['template', 'exported_at'],
  description: 'Schema for template export response.',
} as const;

export const WorkflowTemplateImportRequestSchema = {
  $id: 'WorkflowTemplateImportRequest',
  properties: {
    template: { additionalProperties: true, type: 'object', description: 'Template data to import' },
    override_name: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Optional name override for imported template' },
    merge_with_existing: { type: 'boolean', description: 'Whether to merge with existing template if found', default: false },
  },
  type: 'object',
  required: ['template'],
  description: 'Schema for template import request.',
} as const;

export const WorkflowTemplateValidationRequestSchema = {
  $id: 'WorkflowTemplateValidationRequest',
  properties: { template: { additionalProperties: true, type: 'object', description: 'Template data to validate' } },
  type: 'object',
  required: ['template'],
  description: 'Schema for template validation request.',
} as const;

export const WorkflowTemplateValidationResponseSchema = {
  $id: 'WorkflowTemplateValidationResponse',
  properties: {
    is_valid: { type: 'boolean', description: 'Whether template is valid' },
    errors: { items: { type: 'string' }, type: 'array', description: 'Validation errors' },
    warnings: { items: { type: 'string' }, type: 'array', description: 'Validation warnings' },
    template_info: {
      anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }],
      description: 'Extracted template information',
    },
  },
  type: 'object',
  required: ['is_valid'],
  description: 'Schema for template validation response.',
} as const;

export const WorkflowTemplateExecutionRequestSchema = {
  $id: 'WorkflowTemplateExecutionRequest',
  properties: {
    input_data: {
      anyOf: [{ additionalProperties: true, type: 'object' }, { type: 'null' }],
      description: 'Input data for execution',
    },
    debug_mode: { type: 'boolean', description: 'Enable debug mode', default: false },
  },
  type: 'object',
  description: 'Schema for template execution request.',
} as const;

/** Every workflow schema, registered once at the root so routes can `$ref` them. */
export const WORKFLOW_SCHEMAS = [
  WorkflowNodeDataSchema,
  WorkflowNodeSchema,
  WorkflowEdgeDataSchema,
  WorkflowEdgeSchema,
  WorkflowDefinitionCreateSchema,
  WorkflowDefinitionUpdateSchema,
  WorkflowDefinitionResponseSchema,
  WorkflowDefinitionsResponseSchema,
  WorkflowDeleteResponseSchema,
  WorkflowDefinitionFromTemplateRequestSchema,
  WorkflowValidationResponseSchema,
  WorkflowExecutionRequestSchema,
  ComplexityMetricsSchema,
  BottleneckInfoSchema,
  OptimizationSuggestionSchema,
  WorkflowAnalyticsResponseSchema,
  WorkflowTemplateCreateSchema,
  WorkflowTemplateUpdateSchema,
  WorkflowTemplateResponseSchema,
  WorkflowTemplatesResponseSchema,
  WorkflowTemplateExportResponseSchema,
  WorkflowTemplateImportRequestSchema,
  WorkflowTemplateValidationRequestSchema,
  WorkflowTemplateValidationResponseSchema,
  WorkflowTemplateExecutionRequestSchema,
] as const;
