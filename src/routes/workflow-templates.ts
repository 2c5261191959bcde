import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError, RequestValidationError } from '../http/errors.js';
import { errorResponses } from '../http/schemas/common-schemas.js';
import { createWorkflowDefinitionsRepository } from '../repositories/workflow-definitions-repository.js';
import {
  createWorkflowTemplatesRepository,
  type WorkflowTemplateChanges,
  type WorkflowTemplateFields,
  type WorkflowTemplateRow,
} from '../repositories/workflow-templates-repository.js';
import { WorkflowValidationError, type BuilderEdge, type BuilderNode } from '../workflows/builder-graph.js';
import { createWorkflowExecutor, executionInputOf } from '../workflows/workflow-executor.js';
import { builtinTemplates, isBuiltinTemplate, workflowResolverFor, type BuiltinTemplate } from '../workflows/workflow-resolver.js';
import { presentExecution } from './executions.js';
import { sharedResourceAccess } from './shared-resource-access.js';
import { workflowRouteSchema, type WorkflowRoutesOptions } from './workflow-definitions.js';

const TemplateParams = {
  type: 'object',
  required: ['template_id'],
  properties: { template_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Template ID (a built-in one: its name)' } },
} as const;
type TemplateParams = { template_id: string };
type Graph = { nodes: readonly Record<string, unknown>[]; edges: readonly Record<string, unknown>[] };
type CreateBody = Omit<WorkflowTemplateFields, 'nodes' | 'edges'>;
type ImportBody = { template: Record<string, unknown>; override_name?: string | null; merge_with_existing?: boolean };

/** The owner of the built-in templates, which no user owns. */
const BUILTIN_OWNER = 'system';

/** A hash of the graph alone (sorted keys), the same for a template and its export re-imported. */
const configHash = (graph: Graph): string => {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
          )
        : value;
  return createHash('sha256')
    .update(JSON.stringify(canonical({ nodes: graph.nodes, edges: graph.edges })))
    .digest('hex');
};

const presentTemplate = (row: WorkflowTemplateRow) => ({
  ...row,
  is_builtin: false,
  is_latest: true,
  rating: null,
  rating_count: 0,
  config_hash: configHash(row),
  estimated_complexity: null,
});

const presentBuiltin = (template: BuiltinTemplate, usage: { usage_count: number; success_rate: number | null }) => ({
  id: template.id,
  name: template.name,
  description: template.description,
  category: 'builtin',
  default_params: {},
  required_tools: null,
  required_retrievers: null,
  tags: ['builtin'],
  is_public: true,
  owner_id: BUILTIN_OWNER,
  base_template_id: null,
  workflow_definition_id: null,
  is_builtin: true,
  version: 1,
  is_latest: true,
  rating: null,
  rating_count: 0,
  ...usage,
  config_hash: configHash(template),
  estimated_complexity: null,
  nodes: template.nodes,
  edges: template.edges,
});

/** Problems of an imported (loosely typed) template's catalogue fields, located under `body.template`. */
const importProblems = (template: Record<string, unknown>, overrideName: string | null | undefined) => {
  const problems: { loc: (string | number)[]; msg: string; type: string }[] = [];
  const at = (field: string) => ['body', 'template', field];
  const name = overrideName ?? template['name'];
  if (typeof name !== 'string' || name.length === 0 || name.length > 255)
    problems.push({ loc: at('name'), msg: 'name must be text of 1 to 255 characters', type: 'string_type' });
  const description = template['description'];
  if (typeof description !== 'string' || description.length === 0)
    problems.push({ loc: at('description'), msg: 'description must be non-empty text', type: 'string_type' });
  for (const field of ['nodes', 'edges']) {
    if (!Array.isArray(template[field]))
      problems.push({ loc: at(field), msg: `${field} must be a list (the builder's ${field})`, type: 'list_type' });
  }
  for (const field of ['tags', 'required_tools', 'required_retrievers']) {
    const value = template[field];
    if (value !== undefined && value !== null && (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))) {
      problems.push({ loc: at(field), msg: `${field} must be a list of strings`, type: 'list_type' });
    }
  }
  const params = template['default_params'];
  if (params !== undefined && params !== null && (typeof params !== 'object' || Array.isArray(params)))
    problems.push({ loc: at('default_params'), msg: 'default_params must be an object', type: 'dict_type' });
  if (template['category'] !== undefined && typeof template['category'] !== 'string')
    problems.push({ loc: at('category'), msg: 'category must be text', type: 'string_type' });
  return problems;
};

/**
 * `/api/v1/workflows/templates/*`: the built-in templates (read-only: 403 on a change) and
 * the caller's own, created from a definition or another template, imported, exported,
 * validated and executed (as chat turns, through the same runtime as chat).
 */
export const workflowTemplateRoutes: FastifyPluginAsync<WorkflowRoutesOptions> = async (app, { services, limits }) => {
  const templates = createWorkflowTemplatesRepository(app.db.pool);
  const definitions = createWorkflowDefinitionsRepository(app.db.pool);
  const workflows = workflowResolverFor(app, services);
  const { execute } = createWorkflowExecutor(app, { services, limits, workflows });
  const { visible, owned } = sharedResourceAccess(app, {
    resource: 'workflow_template',
    label: 'Workflow template',
    repository: templates,
  });

  app.addHook('onRequest', app.authenticate);

  const builtin = async (request: FastifyRequest, id: string) => {
    const template = builtinTemplates().find((candidate) => candidate.id === id);
    return template === undefined ? undefined : presentBuiltin(template, await templates.builtinUsage(id, request.user.id));
  };
  /** A built-in template or one the caller may read (404 otherwise). */
  const readable = async (request: FastifyRequest, id: string) =>
    (await builtin(request, id)) ?? presentTemplate(await visible(request, id));
  const readOnly = (id: string): void => {
    if (isBuiltinTemplate(id))
      throw new HttpError(
        403,
        `The built-in template ${JSON.stringify(id)} is read-only; create your own from it`,
        'builtin_template_read_only',
      );
  };

  app.get(
    '/templates',
    {
      schema: workflowRouteSchema('List Workflow Templates', 'list_workflow_templates_api_v1_workflows_templates_get', {
        response: { 200: { $ref: 'WorkflowTemplatesResponse#' }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      const builtins = await Promise.all(builtinTemplates().map(async (template) => (await builtin(request, template.id))!));
      const own = (await templates.list(request.user.id)).map(presentTemplate);
      return { templates: [...builtins, ...own], total_count: builtins.length + own.length };
    },
  );

  app.post<{ Body: CreateBody }>(
    '/templates',
    {
      schema: workflowRouteSchema('Create Workflow Template', 'create_workflow_template_api_v1_workflows_templates_post', {
        description:
          'A template of the graph of `workflow_definition_id` (a definition you may read) or of `base_template_id` (a template, built-in ones included).',
        body: { $ref: 'WorkflowTemplateCreate#' },
        response: { 200: { $ref: 'WorkflowTemplateResponse#' }, ...errorResponses(401, 404) },
      }),
    },
    async (request) => {
      const body = request.body;
      // Like a chat's profile_id: a source the caller may not read is missing, whoever owns it.
      const unknown = (field: 'workflow_definition_id' | 'base_template_id') =>
        new HttpError(404, field === 'base_template_id' ? 'Workflow template not found' : 'Workflow definition not found', 'not_found');
      let graph: Graph;
      if (typeof body.workflow_definition_id === 'string') {
        const definition = await definitions.findVisible(body.workflow_definition_id, request.user.id);
        if (definition === null) throw unknown('workflow_definition_id');
        graph = definition;
      } else if (typeof body.base_template_id === 'string') {
        const base =
          builtinTemplates().find((template) => template.id === body.base_template_id) ??
          (await templates.findVisible(body.base_template_id, request.user.id));
        if (base === null) throw unknown('base_template_id');
        graph = base;
      } else {
        throw new RequestValidationError([
          {
            loc: ['body', 'workflow_definition_id'],
            msg: 'a template needs the graph of workflow_definition_id or base_template_id (or import one)',
            type: 'missing',
          },
        ]);
      }
      await workflows.check(request.user.id, graph, []);
      return presentTemplate(await templates.create(request.user.id, { ...body, nodes: graph.nodes, edges: graph.edges }));
    },
  );

  app.post<{ Body: ImportBody }>(
    '/templates/import',
    {
      schema: workflowRouteSchema('Import Workflow Template', 'import_workflow_template_api_v1_workflows_templates_import_post', {
        description:
          "Creates a template from an export's `template` (name, description, nodes, edges and catalogue fields), checked to run; always a new template.",
        body: { $ref: 'WorkflowTemplateImportRequest#' },
        response: { 200: { $ref: 'WorkflowTemplateResponse#' }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      const { template, override_name: overrideName } = request.body;
      const problems = importProblems(template, overrideName);
      if (problems.length > 0) throw new RequestValidationError(problems);
      const graph = { nodes: template['nodes'] as Record<string, unknown>[], edges: template['edges'] as Record<string, unknown>[] };
      await workflows.check(request.user.id, graph, ['template']);
      return presentTemplate(
        await templates.create(request.user.id, {
          ...graph,
          name: (overrideName ?? template['name']) as string,
          description: template['description'] as string,
          category: (template['category'] as string | undefined) ?? 'custom',
          default_params: (template['default_params'] as Record<string, unknown> | null | undefined) ?? {},
          required_tools: template['required_tools'] as string[] | null | undefined,
          required_retrievers: template['required_retrievers'] as string[] | null | undefined,
          tags: template['tags'] as string[] | null | undefined,
        }),
      );
    },
  );

  app.post<{ Body: { template: Record<string, unknown> } }>(
    '/templates/validate',
    {
      schema: workflowRouteSchema('Validate Workflow Template', 'validate_workflow_template_api_v1_workflows_templates_validate_post', {
        description: 'Whether `template` would import and run for the caller; each error names the field, node or edge.',
        body: { $ref: 'WorkflowTemplateValidationRequest#' },
        response: { 200: { $ref: 'WorkflowTemplateValidationResponse#' }, ...errorResponses(401) },
      }),
    },
    async (request) => {
      const { template } = request.body;
      const describe = (problem: { loc: readonly (string | number)[]; msg: string }) => `${problem.loc.slice(1).join('.')}: ${problem.msg}`;
      const problems = importProblems(template, undefined).map(describe);
      if (problems.length === 0) {
        try {
          await workflows.translate(request.user.id, template['nodes'] as BuilderNode[], template['edges'] as BuilderEdge[]);
        } catch (error) {
          if (!(error instanceof WorkflowValidationError)) throw error;
          problems.push(...error.problems.map((problem) => describe({ ...problem, loc: ['body', 'template', ...problem.loc.slice(1)] })));
        }
      }
      const nodes = Array.isArray(template['nodes']) ? (template['nodes'] as BuilderNode[]) : [];
      return {
        is_valid: problems.length === 0,
        errors: problems,
        warnings: [],
        template_info: {
          name: template['name'] ?? null,
          node_count: nodes.length,
          edge_count: Array.isArray(template['edges']) ? template['edges'].length : 0,
          node_types: [...new Set(nodes.map((node) => node.data?.nodeType ?? node.type))],
        },
      };
    },
  );

  app.put<{ Params: TemplateParams; Body: WorkflowTemplateChanges }>(
    '/templates/:template_id',
    {
      schema: workflowRouteSchema('Update Workflow Template', 'update_workflow_template_api_v1_workflows_templates__template_id__put', {
        description:
          'Changes the catalogue fields given (the owner only; the graph stays: import a new template to change it). Built-in templates: 403.',
        params: TemplateParams,
        body: { $ref: 'WorkflowTemplateUpdate#' },
        response: { 200: { $ref: 'WorkflowTemplateResponse#' }, ...errorResponses(401, 403, 404) },
      }),
    },
    async (request) => {
      readOnly(request.params.template_id);
      const row = await owned(request, request.params.template_id);
      const changes = Object.fromEntries(
        Object.entries(request.body).filter(([, value]) => value !== undefined),
      ) as WorkflowTemplateChanges;
      return presentTemplate((await templates.update(row.id, request.user.id, changes)) ?? (await owned(request, row.id)));
    },
  );

  app.delete<{ Params: TemplateParams }>(
    '/templates/:template_id',
    {
      schema: workflowRouteSchema('Delete Workflow Template', 'delete_workflow_template_api_v1_workflows_templates__template_id__delete', {
        description: 'Deletes the template (the owner only); built-in templates: 403.',
        params: TemplateParams,
        response: { 200: { $ref: 'WorkflowDeleteResponse#' }, ...errorResponses(401, 403, 404) },
      }),
    },
    async (request) => {
      readOnly(request.params.template_id);
      const row = await owned(request, request.params.template_id);
      await templates.delete(row.id, request.user.id);
      return { message: 'Workflow template deleted', workflow_id: row.id };
    },
  );

  app.get<{ Params: TemplateParams }>(
    '/templates/:template_id/export',
    {
      schema: workflowRouteSchema(
        'Export Workflow Template',
        'export_workflow_template_api_v1_workflows_templates__template_id__export_get',
        {
          description: 'The template with its graph, as `POST /templates/import` takes it back.',
          params: TemplateParams,
          response: { 200: { $ref: 'WorkflowTemplateExportResponse#' }, ...errorResponses(401, 404) },
        },
      ),
    },
    async (request) => ({
      template: await readable(request, request.params.template_id),
      export_format: 'json',
      exported_at: new Date().toISOString(),
    }),
  );

  app.post<{ Params: TemplateParams; Body: { input_data?: Record<string, unknown> | null; debug_mode?: boolean } }>(
    '/templates/:template_id/execute',
    {
      schema: workflowRouteSchema(
        'Execute Workflow Template',
        'execute_workflow_template_api_v1_workflows_templates__template_id__execute_post',
        {
          description:
            'Runs the template as one chat turn (`input_data` as for a definition) and answers its execution once the run is saved.',
          params: TemplateParams,
          body: { $ref: 'WorkflowTemplateExecutionRequest#' },
          response: { 200: { $ref: 'WorkflowExecutionResponse#' }, ...errorResponses(401, 404, 409, 429) },
        },
      ),
    },
    async (request, reply) => {
      const id = request.params.template_id;
      if (!isBuiltinTemplate(id)) await visible(request, id);
      const input = executionInputOf(request.body.input_data);
      return presentExecution((await execute(request, reply, { kind: 'template', id }, input)).row);
    },
  );
};
