import type { FastifyPluginAsync } from 'fastify';
import { CONDITION_SYNTAX } from '../graphs/conditions.js';
import { MEMORY_WINDOW } from '../graphs/templates.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT4_MAX } from '../http/schemas/common-schemas.js';
import type { ChatLimits } from '../limits/chat-rate-limit.js';
import { createRunsRepository } from '../repositories/runs-repository.js';
import { createWorkflowDefinitionsRepository, type WorkflowDefinitionFields } from '../repositories/workflow-definitions-repository.js';
import type { Services } from '../services.js';
import {
  MAX_WORKFLOW_EDGES,
  MAX_WORKFLOW_NODES,
  WorkflowValidationError,
  type BuilderEdge,
  type BuilderNode,
} from '../workflows/builder-graph.js';
import { graphShape } from '../workflows/graph-shape.js';
import { createWorkflowExecutor, executionInputOf } from '../workflows/workflow-executor.js';
import { builtinTemplates, workflowResolverFor } from '../workflows/workflow-resolver.js';
import { createWorkflowTemplatesRepository } from '../repositories/workflow-templates-repository.js';
import { presentExecution } from './executions.js';
import { sharedResourceAccess } from './shared-resource-access.js';

export type WorkflowRoutesOptions = {
  readonly services: Services;
  readonly limits: ChatLimits;
  /** TOOL_CALL_LIMIT, shown in the defaults of tool nodes. */
  readonly toolCallLimit: number;
};

const DefinitionParams = {
  type: 'object',
  required: ['workflow_id'],
  properties: { workflow_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Workflow definition ID' } },
} as const;
type DefinitionParams = { workflow_id: string };
type Graph = { nodes: BuilderNode[]; edges: BuilderEdge[] };
type DefinitionBody = WorkflowDefinitionFields & Graph;
type ExecutionBody = { definition_id: string; input_data?: Record<string, unknown> | null; debug_mode?: boolean };
type CustomQuery = { message: string; entry_point?: string; provider?: string; model?: string; conversation_id?: string };
type FromTemplateBody = {
  template_id: string;
  name_suffix?: string | null;
  user_input?: Record<string, unknown> | null;
  is_temporary?: boolean;
};

const NODE_TYPES = ['model', 'tool', 'memory', 'conditional', 'start', 'end'] as const;

/** A workflow route's schema: the contract's tag, summary and operationId, bearer auth, and its parts. */
export const workflowRouteSchema = (summary: string, operationId: string, parts: Record<string, unknown>) => ({
  tags: ['Workflows'],
  summary,
  operationId,
  security: bearerSecurity,
  ...parts,
});

/**
 * `/api/v1/workflows/definitions/*` and `/defaults`: the caller's workflow definitions
 * (the builder's nodes and edges, checked to run on every write), their validation,
 * execution (as chat turns, through the same runtime), executions and analytics (from the
 * run rows). Another user's private definition answers like a missing one (404).
 */
export const workflowDefinitionRoutes: FastifyPluginAsync<WorkflowRoutesOptions> = async (app, { services, limits, toolCallLimit }) => {
  const definitions = createWorkflowDefinitionsRepository(app.db.pool);
  const templates = createWorkflowTemplatesRepository(app.db.pool);
  const runs = createRunsRepository(app.db.pool);
  const workflows = workflowResolverFor(app, services);
  const { execute } = createWorkflowExecutor(app, { services, limits, workflows });
  const { visible, owned } = sharedResourceAccess(app, {
    resource: 'workflow_definition',
    label: 'Workflow definition',
    repository: definitions,
  });

  app.addHook('onRequest', app.authenticate);

  app.get(
    '/definitions',
    {
      schema: workflowRouteSchema('List Workflow Definitions', 'list_workflow_definitions_api_v1_workflows_definitions_get', {
        response: { 200: { $ref: 'WorkflowDefinitionsResponse#' }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      const rows = await definitions.list(request.user.id);
      return { definitions: rows, total_count: rows.length };
    },
  );

  app.post<{ Body: DefinitionBody }>(
    '/definitions',
    {
      schema: workflowRouteSchema('Create Workflow Definition', 'create_workflow_definition_api_v1_workflows_definitions_post', {
        description: 'Stores a definition whose graph can run (422 naming each node and edge that cannot).',
        body: { $ref: 'WorkflowDefinitionCreate#' },
        response: { 200: { $ref: 'WorkflowDefinitionResponse#' }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      await workflows.check(request.user.id, request.body);
      return definitions.create(request.user.id, request.body);
    },
  );

  app.post<{ Body: FromTemplateBody }>(
    '/definitions/from-template',
    {
      schema: workflowRouteSchema(
        'Create Workflow Definition From Template',
        'create_workflow_definition_from_template_api_v1_workflows_definitions_from_template_post',
        {
          body: { $ref: 'WorkflowDefinitionFromTemplateRequest#' },
          response: { 200: { $ref: 'WorkflowDefinitionResponse#' }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => {
      const { template_id: templateId, name_suffix: suffix, user_input: userInput } = request.body;
      const builtin = builtinTemplates().find((template) => template.id === templateId);
      const source = builtin ?? (await templates.findVisible(templateId, request.user.id));
      // Like a chat's profile_id: a template the caller may not read is missing, whoever owns it.
      if (source === null) throw new HttpError(404, 'Workflow template not found', 'workflow_template_not_found');
      const graph = { nodes: source.nodes as BuilderNode[], edges: source.edges as BuilderEdge[] };
      await workflows.check(request.user.id, graph);
      return definitions.create(request.user.id, {
        name: `${source.name}${suffix ?? ''}`.slice(0, 255),
        description: source.description,
        ...graph,
        metadata: userInput === null || userInput === undefined ? null : { user_input: userInput },
        template_id: templateId,
      });
    },
  );

  app.post<{ Body: Partial<Graph> & Record<string, unknown> }>(
    '/definitions/validate',
    {
      schema: workflowRouteSchema(
        'Validate Workflow Definition',
        'validate_workflow_definition_api_v1_workflows_definitions_validate_post',
        {
          description:
            'Whether the graph can run for the caller; `errors` name each node and edge that cannot (`loc` points into the body).',
          body: { type: 'object', additionalProperties: true },
          response: { 200: { $ref: 'WorkflowValidationResponse#' }, ...errorResponses(401) },
        },
      ),
    },
    async (request) => {
      const { nodes, edges } = request.body;
      const missing = [
        ...(Array.isArray(nodes) ? [] : [{ loc: ['body', 'nodes'], msg: 'nodes must be a list of nodes', type: 'list_type' }]),
        ...(Array.isArray(edges) ? [] : [{ loc: ['body', 'edges'], msg: 'edges must be a list of edges', type: 'list_type' }]),
      ];
      if (missing.length > 0) return { is_valid: false, errors: missing, warnings: [], suggestions: [] };
      try {
        await workflows.translate(request.user.id, nodes as BuilderNode[], edges as BuilderEdge[]);
        return { is_valid: true, errors: [], warnings: [], suggestions: [] };
      } catch (error) {
        if (!(error instanceof WorkflowValidationError)) throw error;
        return { is_valid: false, errors: error.problems, warnings: [], suggestions: [] };
      }
    },
  );

  app.post<{ Querystring: CustomQuery; Body: Graph }>(
    '/definitions/custom/execute',
    {
      schema: workflowRouteSchema('Execute Custom Workflow', 'execute_custom_workflow_api_v1_workflows_definitions_custom_execute_post', {
        description: 'Runs a graph sent with the request (not stored) as one chat turn; answers the execution and the reply.',
        querystring: {
          type: 'object',
          required: ['message'],
          properties: {
            message: { type: 'string', minLength: 1, maxLength: 100_000 },
            entry_point: {
              type: 'string',
              minLength: 1,
              maxLength: 128,
              description: 'The node to start at (default: the start node\u2019s target)',
            },
            provider: { type: 'string', maxLength: 64 },
            model: { type: 'string', maxLength: 200 },
            conversation_id: { type: 'string', maxLength: 128 },
          },
        },
        body: {
          type: 'object',
          required: ['nodes', 'edges'],
          properties: {
            nodes: { type: 'array', maxItems: MAX_WORKFLOW_NODES, items: { type: 'object', additionalProperties: true } },
            edges: { type: 'array', maxItems: MAX_WORKFLOW_EDGES, items: { type: 'object', additionalProperties: true } },
          },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: true,
            properties: {
              execution: { $ref: 'WorkflowExecutionResponse#' },
              response: { type: ['string', 'null'] },
              conversation_id: { type: 'string' },
            },
          },
          ...errorResponses(401, 404, 409, 429),
        },
      }),
    },
    async (request, reply) => {
      const query = request.query;
      const input = executionInputOf(
        { message: query.message, conversation_id: query.conversation_id, provider: query.provider, model: query.model },
        ['query'],
      );
      const { row, result } = await execute(
        request,
        reply,
        { kind: 'graph', nodes: request.body.nodes, edges: request.body.edges, entry: query.entry_point },
        input,
      );
      return {
        execution: presentExecution(row),
        response: result.assistantMessage?.content ?? null,
        conversation_id: result.started.conversationId,
      };
    },
  );

  app.get<{ Params: DefinitionParams }>(
    '/definitions/:workflow_id',
    {
      schema: workflowRouteSchema('Get Workflow Definition', 'get_workflow_definition_api_v1_workflows_definitions__workflow_id__get', {
        params: DefinitionParams,
        response: { 200: { $ref: 'WorkflowDefinitionResponse#' }, ...errorResponses(401, 404) },
      }),
    },
    async (request) => visible(request, request.params.workflow_id),
  );

  app.put<{ Params: DefinitionParams; Body: Partial<DefinitionBody> }>(
    '/definitions/:workflow_id',
    {
      schema: workflowRouteSchema(
        'Update Workflow Definition',
        'update_workflow_definition_api_v1_workflows_definitions__workflow_id__put',
        {
          description: 'Changes the fields given (the owner only); a changed graph is checked as a whole and moves `version`.',
          params: DefinitionParams,
          body: { $ref: 'WorkflowDefinitionUpdate#' },
          response: { 200: { $ref: 'WorkflowDefinitionResponse#' }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => {
      const current = await owned(request, request.params.workflow_id);
      const { nodes, edges, ...rest } = request.body;
      const changes = {
        ...rest,
        ...(nodes === null || nodes === undefined ? {} : { nodes }),
        ...(edges === null || edges === undefined ? {} : { edges }),
      };
      if (changes.nodes !== undefined || changes.edges !== undefined) {
        await workflows.check(request.user.id, {
          nodes: (changes.nodes ?? current.nodes) as BuilderNode[],
          edges: (changes.edges ?? current.edges) as BuilderEdge[],
        });
      }
      return (await definitions.update(current.id, request.user.id, changes)) ?? owned(request, current.id);
    },
  );

  app.delete<{ Params: DefinitionParams }>(
    '/definitions/:workflow_id',
    {
      schema: workflowRouteSchema(
        'Delete Workflow Definition',
        'delete_workflow_definition_api_v1_workflows_definitions__workflow_id__delete',
        {
          description: 'Deletes the definition (the owner only); its runs stay, with its id.',
          params: DefinitionParams,
          response: { 200: { $ref: 'WorkflowDeleteResponse#' }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => {
      const row = await owned(request, request.params.workflow_id);
      await definitions.delete(row.id, request.user.id);
      return { message: 'Workflow definition deleted', workflow_id: row.id };
    },
  );

  app.post<{ Params: DefinitionParams; Body: ExecutionBody }>(
    '/definitions/:workflow_id/execute',
    {
      schema: workflowRouteSchema('Execute Workflow', 'execute_workflow_api_v1_workflows_definitions__workflow_id__execute_post', {
        description:
          'Runs the definition as one chat turn (`input_data.message`, optionally `conversation_id`, `provider`, `model`, `temperature`, `max_tokens`) and answers its execution once the run is saved.',
        params: DefinitionParams,
        body: { $ref: 'WorkflowExecutionRequest#' },
        response: { 200: { $ref: 'WorkflowExecutionResponse#' }, ...errorResponses(401, 404, 409, 429) },
      }),
    },
    async (request, reply) => {
      const row = await visible(request, request.params.workflow_id);
      if (request.body.definition_id !== row.id) {
        throw new RequestValidationError([
          { loc: ['body', 'definition_id'], msg: 'definition_id must be the id in the path', type: 'value_error' },
        ]);
      }
      const input = executionInputOf(request.body.input_data);
      return presentExecution((await execute(request, reply, { kind: 'definition', id: row.id }, input)).row);
    },
  );

  app.get<{ Params: DefinitionParams; Querystring: { limit: number; offset: number } }>(
    '/definitions/:workflow_id/executions',
    {
      schema: workflowRouteSchema(
        'List Workflow Executions',
        'list_workflow_executions_api_v1_workflows_definitions__workflow_id__executions_get',
        {
          description: "The caller's runs of the definition, newest first.",
          params: DefinitionParams,
          querystring: {
            type: 'object',
            properties: {
              limit: { type: 'integer', minimum: 1, maximum: 100, default: 100 },
              offset: { type: 'integer', minimum: 0, maximum: INT4_MAX, default: 0 },
            },
          },
          response: { 200: { type: 'array', items: { $ref: 'WorkflowExecutionResponse#' } }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => {
      const row = await visible(request, request.params.workflow_id);
      const { rows } = await runs.byDefinition(row.id, request.user.id, request.query);
      return rows.map(presentExecution);
    },
  );

  app.get<{ Params: DefinitionParams }>(
    '/definitions/:workflow_id/analytics',
    {
      schema: workflowRouteSchema(
        'Get Workflow Analytics',
        'get_workflow_analytics_api_v1_workflows_definitions__workflow_id__analytics_get',
        {
          description:
            "The graph's structure (complexity, paths, loops) and, in `runs`, the caller's runs of it: counts by outcome, tokens, cost, p50/p95 duration, from the run rows.",
          params: DefinitionParams,
          response: { 200: { $ref: 'WorkflowAnalyticsResponse#' }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => {
      const row = await visible(request, request.params.workflow_id);
      const [stats, translated] = await Promise.all([
        definitions.runStats(row.id, request.user.id),
        workflows.translate(request.user.id, row.nodes as BuilderNode[], row.edges as BuilderEdge[]).catch(() => null),
      ]);
      const shape = translated === null ? null : graphShape(translated.definition);
      const ended = stats.completed + stats.errors + stats.cancelled;
      return {
        complexity: shape?.complexity ?? {
          score: 0,
          node_count: row.nodes.length,
          edge_count: row.edges.length,
          depth: 0,
          branching_factor: 0,
        },
        bottlenecks: [],
        optimization_suggestions: [],
        execution_paths: shape?.executionPaths ?? 0,
        estimated_execution_time_ms: stats.p50_duration_ms,
        risk_factors: [
          ...(shape?.loops ?? []).map(
            (loop) => `loop ${loop.from} → ${loop.to}: repeats until the model stops calling tools or the tool-call limit`,
          ),
          ...(translated === null ? ['the graph cannot run with your tools now'] : []),
        ],
        total_execution_time_ms: stats.total_duration_ms,
        error: null,
        started_at: stats.first_started_at ?? row.created_at,
        completed_at: stats.last_finished_at,
        runs: {
          total: stats.runs,
          completed: stats.completed,
          errors: stats.errors,
          cancelled: stats.cancelled,
          live: stats.live,
          error_rate: ended === 0 ? null : stats.errors / ended,
          prompt_tokens: stats.prompt_tokens,
          completion_tokens: stats.completion_tokens,
          total_tokens: stats.total_tokens,
          cost: stats.cost,
          cost_unknown_runs: stats.cost_unknown_runs,
          model_calls: stats.model_calls,
          tool_calls: stats.tool_calls,
          p50_duration_ms: stats.p50_duration_ms,
          p95_duration_ms: stats.p95_duration_ms,
        },
      };
    },
  );

  app.get<{ Querystring: { node_type?: (typeof NODE_TYPES)[number] } }>(
    '/defaults',
    {
      schema: workflowRouteSchema('Get Workflow Defaults', 'get_workflow_defaults_api_v1_workflows_defaults_get', {
        description:
          "What a builder node gets when its config leaves a field out, per node type (`node_type` picks one), with the caller's tools and the run limits.",
        querystring: { type: 'object', properties: { node_type: { type: 'string', enum: NODE_TYPES } } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      const { provider, model } = services.providers.resolve(undefined, undefined);
      const tools = await workflows.toolNames(request.user.id);
      const defaults: Record<string, Record<string, unknown>> = {
        model: { provider, model, temperature: null, max_tokens: null, system_message: null, tool_choice: 'auto' },
        tool: { tools, available_tools: tools, tool_call_limit: toolCallLimit },
        memory: { window: MEMORY_WINDOW },
        conditional: { condition: 'has_tool_calls', condition_syntax: CONDITION_SYNTAX },
        start: {},
        end: {},
      };
      const nodeType = request.query.node_type;
      return nodeType === undefined
        ? { ...defaults, node_types: NODE_TYPES, builtin_templates: builtinTemplates().map((template) => template.id) }
        : { node_type: nodeType, ...defaults[nodeType] };
    },
  );
};
