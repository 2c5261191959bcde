import type { FastifyInstance } from 'fastify';
import type { DatabasePool } from 'slonik';
import type { GraphDefinition } from '../graphs/definition.js';
import { getTemplate, listTemplates } from '../graphs/templates.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import { createWorkflowDefinitionsRepository } from '../repositories/workflow-definitions-repository.js';
import { createWorkflowTemplatesRepository } from '../repositories/workflow-templates-repository.js';
import type { Services } from '../services.js';
import type { ToolRegistry } from '../tools/tool-registry.js';
import {
  CUSTOM_WORKFLOW,
  toBuilderFormat,
  translateWorkflow,
  WorkflowValidationError,
  type BuilderEdge,
  type BuilderNode,
  type WorkflowRunSettings,
} from './builder-graph.js';

/** A built-in template in the builder's format (its tools nodes offer every tool the user has). */
export type BuiltinTemplate = {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly nodes: BuilderNode[];
  readonly edges: BuilderEdge[];
  readonly requiredTools: readonly string[];
};

/** The built-in templates (src/graphs/templates.ts), `chat` first; their ids are their names. */
export const builtinTemplates = (): BuiltinTemplate[] =>
  listTemplates().map((definition) => ({
    id: definition.name,
    name: definition.name,
    description: definition.description ?? definition.name,
    ...toBuilderFormat(definition, { allTools: true }),
    requiredTools: [],
  }));

export const isBuiltinTemplate = (id: string): boolean => listTemplates().some((definition) => definition.name === id);

/** What a run of a workflow needs: the runtime's workflow name and graph, its settings and what its run row records. */
export type ResolvedWorkflow = {
  readonly workflow: string;
  /** Absent: the built-in template `workflow` names. */
  readonly definition?: GraphDefinition | undefined;
  readonly settings: WorkflowRunSettings;
  /** Recorded in the run's input: the per-definition and per-template figures read them. */
  readonly runInput: { readonly workflow_definition_id?: string; readonly workflow_template_id?: string };
};

export type WorkflowChoice =
  | { readonly kind: 'definition'; readonly id: string }
  | { readonly kind: 'template'; readonly id: string }
  | {
      readonly kind: 'graph';
      readonly nodes: readonly BuilderNode[];
      readonly edges: readonly BuilderEdge[];
      readonly entry?: string | undefined;
    };

/** The validation problems as the contract's 422 body, under `prefix` (where the graph sat in the request). */
export const asRequestError = (error: WorkflowValidationError, prefix: readonly (string | number)[] = []): RequestValidationError =>
  new RequestValidationError(error.problems.map((problem) => ({ ...problem, loc: ['body', ...prefix, ...problem.loc.slice(1)] })));

/**
 * Resolves the workflow a run executes: a stored definition or template the user may read
 * (404 otherwise), or a graph sent with the request, each translated and checked against
 * the user's tools (422 naming the node or edge when it cannot run). Reads only.
 */
export const createWorkflowResolver = ({ pool, toolsFor }: { pool: DatabasePool; toolsFor: (userId: string) => Promise<ToolRegistry> }) => {
  const definitions = createWorkflowDefinitionsRepository(pool);
  const templates = createWorkflowTemplatesRepository(pool);

  /** The user's tool names (what tool nodes may name). */
  const toolNames = async (userId: string): Promise<string[]> => (await toolsFor(userId)).names();

  /**
   * @throws {WorkflowValidationError} when the graph cannot run for this user.
   */
  const translate = async (userId: string, nodes: readonly BuilderNode[], edges: readonly BuilderEdge[], entry?: string) =>
    translateWorkflow(nodes, edges, { toolNames: await toolNames(userId), entry });

  /**
   * A graph a request sends to be stored, translated for the user.
   * @param prefix where the graph sits in the request body, for the 422's `loc`.
   * @throws RequestValidationError 422 naming its nodes and edges when it cannot run.
   */
  const check = async (
    userId: string,
    graph: { readonly nodes: unknown; readonly edges: unknown },
    prefix: readonly (string | number)[] = [],
  ) => {
    try {
      return await translate(userId, graph.nodes as BuilderNode[], graph.edges as BuilderEdge[]);
    } catch (error) {
      throw error instanceof WorkflowValidationError ? asRequestError(error, prefix) : error;
    }
  };

  /**
   * @param prefix where a sent graph sits in the request body, for the 422's `loc`.
   * @throws HttpError 404, RequestValidationError 422
   */
  const resolve = async (userId: string, choice: WorkflowChoice, prefix: readonly (string | number)[] = []): Promise<ResolvedWorkflow> => {
    try {
      switch (choice.kind) {
        case 'definition': {
          const row = await definitions.findVisible(choice.id, userId);
          if (row === null) throw new HttpError(404, 'Workflow definition not found', 'workflow_definition_not_found');
          const { definition, settings } = await translate(userId, row.nodes as BuilderNode[], row.edges as BuilderEdge[]);
          return { workflow: CUSTOM_WORKFLOW, definition, settings, runInput: { workflow_definition_id: row.id } };
        }
        case 'template': {
          if (isBuiltinTemplate(choice.id)) {
            getTemplate(choice.id);
            return { workflow: choice.id, settings: {}, runInput: {} };
          }
          const row = await templates.findVisible(choice.id, userId);
          if (row === null) throw new HttpError(404, 'Workflow template not found', 'workflow_template_not_found');
          const { definition, settings } = await translate(userId, row.nodes as BuilderNode[], row.edges as BuilderEdge[]);
          return { workflow: CUSTOM_WORKFLOW, definition, settings, runInput: { workflow_template_id: row.id } };
        }
        case 'graph': {
          const { definition, settings } = await translate(userId, choice.nodes, choice.edges, choice.entry);
          return { workflow: CUSTOM_WORKFLOW, definition, settings, runInput: {} };
        }
      }
    } catch (error) {
      if (error instanceof WorkflowValidationError) {
        // A stored graph that no longer runs (a tool switched off since): name it in the request's terms.
        throw asRequestError(
          error,
          choice.kind === 'graph' ? prefix : [choice.kind === 'definition' ? 'workflow_definition_id' : 'template_id'],
        );
      }
      throw error;
    }
  };

  return { resolve, translate, check, toolNames };
};

export type WorkflowResolver = ReturnType<typeof createWorkflowResolver>;

/** The resolver of a route plugin: the app's database and the users' tool sets. */
export const workflowResolverFor = (app: FastifyInstance, services: Services): WorkflowResolver =>
  createWorkflowResolver({ pool: app.db.pool, toolsFor: (userId) => services.toolServers.toolSets.forUser(userId) });
