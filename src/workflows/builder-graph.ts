import { END } from '@langchain/langgraph';
import { parseCondition, type Clause } from '../graphs/conditions.js';
import {
  GraphDefinitionError,
  validateGraphDefinition,
  type GraphDefinition,
  type GraphEdge,
  type GraphNode,
} from '../graphs/definition.js';
import { MEMORY_WINDOW } from '../graphs/templates.js';

/**
 * The frontend builder's workflow format (openapi-full.json: `WorkflowNode`, `WorkflowEdge`)
 * and its translation into this service's graph definitions (src/graphs/definition.ts),
 * both ways. A builder node's kind is `data.nodeType` (else `type`); its settings are
 * `data.config`. `start` and `end` nodes mark the entry and `__end__`; an edge's
 * condition is `data.condition` in this service's grammar (src/graphs/conditions.ts), or,
 * leaving a conditional node by its `true`/`false` handle, that node's `condition` or its
 * negation.
 */

export type BuilderNode = {
  readonly id: string;
  readonly type?: string | undefined;
  readonly position?: Readonly<Record<string, number>> | undefined;
  readonly data?:
    { readonly label?: string; readonly nodeType?: string; readonly config?: Readonly<Record<string, unknown>> | null } | undefined;
  readonly [key: string]: unknown;
};

export type BuilderEdge = {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly sourceHandle?: string | null | undefined;
  readonly data?: { readonly condition?: string | null; readonly label?: string | null } | null | undefined;
  readonly [key: string]: unknown;
};

/** One problem, located in the request (the contract's `ValidationError`). */
export type WorkflowProblem = { readonly loc: (string | number)[]; readonly msg: string; readonly type: string };

/** A workflow that cannot run; `problems` names each node or edge at fault. */
export class WorkflowValidationError extends Error {
  override readonly name = 'WorkflowValidationError';
  constructor(readonly problems: readonly WorkflowProblem[]) {
    super(problems.map((problem) => problem.msg).join('; '));
  }
}

/**
 * The run settings the model nodes carry. This service sets them per run (a run has one
 * model), so every model node that sets one must agree.
 */
export type WorkflowRunSettings = {
  readonly provider?: string | undefined;
  readonly model?: string | undefined;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
};

export type TranslatedWorkflow = { readonly definition: GraphDefinition; readonly settings: WorkflowRunSettings };

/** The most nodes and edges a workflow may have (request schemas and sent graphs alike). */
export const MAX_WORKFLOW_NODES = 200;
export const MAX_WORKFLOW_EDGES = 400;

/** The graph name (and metrics label) of every run of a user's workflow: bounded, whatever users call them. */
export const CUSTOM_WORKFLOW = 'custom';

const KINDS: Readonly<Record<string, 'start' | 'end' | GraphNode['type']>> = {
  start: 'start',
  end: 'end',
  model: 'model',
  llm: 'model',
  tool: 'tools',
  tools: 'tools',
  conditional: 'conditional',
  condition: 'conditional',
  memory: 'memory',
};
const RUNNABLE_KINDS = 'start, model, tool, conditional, memory, end';
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const RESERVED = new Set(['__start__', '__end__', 'messages', 'toolCallCount']);
const TOOL_MODES = ['auto', 'none', 'omit'] as const;
const TRUE_HANDLES = new Set(['true', 'yes']);
const FALSE_HANDLES = new Set(['false', 'no']);

const kindOf = (node: BuilderNode): string => (typeof node.data?.nodeType === 'string' ? node.data.nodeType : (node.type ?? ''));
const configOf = (node: BuilderNode): Readonly<Record<string, unknown>> => node.data?.config ?? {};
const first = (config: Readonly<Record<string, unknown>>, keys: readonly string[]): unknown =>
  keys.map((key) => config[key]).find((value) => value !== undefined && value !== null);

/** The negation of a one-clause condition, for a conditional node's `false` handle. */
const negate = (clause: Clause): string | undefined => {
  switch (clause.kind) {
    case 'has_tool_calls':
      return 'no_tool_calls';
    case 'no_tool_calls':
      return 'has_tool_calls';
    case 'tool_calls':
      return `tool_calls ${clause.op === '<' ? '>=' : '<'} ${clause.bound}`;
    case 'always':
      return undefined;
  }
};

type Context = {
  readonly nodes: readonly BuilderNode[];
  readonly problems: WorkflowProblem[];
  readonly toolNames: readonly string[];
};

const problem = (context: Context, loc: (string | number)[], msg: string, type: string): void => {
  context.problems.push({ loc: ['body', ...loc], msg, type: `workflow.${type}` });
};

const label = (node: BuilderNode): string => `node ${JSON.stringify(node.id)}`;

/** The graph node a builder node becomes (undefined for start/end or when its config is wrong). */
const graphNode = (
  context: Context,
  node: BuilderNode,
  index: number,
  kind: GraphNode['type'],
  settings: Map<keyof WorkflowRunSettings, [unknown, string]>,
): GraphNode | undefined => {
  const config = configOf(node);
  const at = (...path: (string | number)[]) => ['nodes', index, 'data', 'config', ...path];
  switch (kind) {
    case 'model': {
      const systemPrompt = first(config, ['system_message', 'system_prompt', 'systemPrompt']);
      const instruction = first(config, ['instruction']);
      const toolChoice = first(config, ['tool_choice', 'tools_mode']);
      const toolMode = TOOL_MODES.find((mode) => mode === toolChoice);
      const values: [keyof WorkflowRunSettings, unknown, (value: unknown) => boolean, string][] = [
        ['provider', first(config, ['provider']), (v) => typeof v === 'string' && v.length > 0 && v.length <= 64, 'a provider name'],
        ['model', first(config, ['model']), (v) => typeof v === 'string' && v.length > 0 && v.length <= 200, 'a model name'],
        ['temperature', first(config, ['temperature']), (v) => typeof v === 'number' && v >= 0 && v <= 2, 'a number from 0 to 2'],
        [
          'maxTokens',
          first(config, ['max_tokens', 'maxTokens']),
          (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 8192,
          'an integer from 1 to 8192',
        ],
      ];
      for (const [key, value, ok, expected] of values) {
        if (value === undefined) continue;
        if (!ok(value)) {
          problem(
            context,
            at(key === 'maxTokens' ? 'max_tokens' : key),
            `${label(node)}: ${key === 'maxTokens' ? 'max_tokens' : key} must be ${expected}`,
            'invalid_node_config',
          );
          continue;
        }
        const known = settings.get(key);
        if (known === undefined) settings.set(key, [value, node.id]);
        else if (known[0] !== value) {
          problem(
            context,
            at(key === 'maxTokens' ? 'max_tokens' : key),
            `${label(node)}: ${key === 'maxTokens' ? 'max_tokens' : key} ${JSON.stringify(value)} differs from node ${JSON.stringify(known[1])}'s ${JSON.stringify(known[0])}; a run has one model, so model nodes must agree`,
            'conflicting_model_settings',
          );
        }
      }
      if (systemPrompt !== undefined && typeof systemPrompt !== 'string')
        problem(context, at('system_message'), `${label(node)}: system_message must be text`, 'invalid_node_config');
      if (instruction !== undefined && typeof instruction !== 'string')
        problem(context, at('instruction'), `${label(node)}: instruction must be text`, 'invalid_node_config');
      if (toolChoice !== undefined && toolMode === undefined) {
        problem(context, at('tool_choice'), `${label(node)}: tool_choice must be "auto", "none" or "omit"`, 'invalid_node_config');
      }
      const modelConfig = {
        ...(typeof systemPrompt === 'string' ? { systemPrompt } : {}),
        ...(typeof instruction === 'string' ? { instruction } : {}),
        ...(toolMode === undefined ? {} : { tools: toolMode }),
      };
      return { id: node.id, type: 'model', config: modelConfig };
    }
    case 'tools': {
      const listed = first(config, ['tools', 'tool_names', 'allowed_tools']) ?? [];
      if (!Array.isArray(listed) || listed.some((name) => typeof name !== 'string')) {
        problem(context, at('tools'), `${label(node)}: tools must be a list of tool names`, 'invalid_node_config');
        return undefined;
      }
      const names = listed as string[];
      const known = new Set(context.toolNames);
      names.forEach((name, k) => {
        if (!known.has(name)) {
          problem(
            context,
            at('tools', k),
            `${label(node)}: unknown tool ${JSON.stringify(name)} (your tools: ${context.toolNames.join(', ') || 'none'})`,
            'unknown_tool',
          );
        }
      });
      // No list: every tool the user has switched on, as chat_with_tools offers.
      const tools = names.length > 0 ? [...new Set(names)] : [...context.toolNames];
      if (tools.length === 0) {
        problem(context, at('tools'), `${label(node)}: you have no tool switched on for a tool node to offer`, 'no_tools');
        return undefined;
      }
      return { id: node.id, type: 'tools', config: { tools } };
    }
    case 'memory': {
      const window = first(config, ['window', 'window_size', 'memory_window', 'max_messages']) ?? MEMORY_WINDOW;
      if (!Number.isInteger(window) || (window as number) < 1) {
        problem(context, at('window'), `${label(node)}: window must be a positive integer (messages kept)`, 'invalid_node_config');
        return undefined;
      }
      return { id: node.id, type: 'memory', config: { window: window as number } };
    }
    case 'conditional':
      return { id: node.id, type: 'conditional' };
  }
};

/** The condition of an edge: its own, else the one its conditional source node gives its handle. */
const edgeCondition = (context: Context, edge: BuilderEdge, index: number, source: BuilderNode | undefined): string | undefined => {
  const own = edge.data?.condition?.trim();
  if (own !== undefined && own !== '') return own;
  const handle = edge.sourceHandle?.toLowerCase();
  if (
    source === undefined ||
    KINDS[kindOf(source)] !== 'conditional' ||
    handle === undefined ||
    (!TRUE_HANDLES.has(handle) && !FALSE_HANDLES.has(handle))
  ) {
    return undefined;
  }
  const nodeCondition = first(configOf(source), ['condition']);
  const where = `edge ${JSON.stringify(edge.id)} (${edge.source} → ${edge.target})`;
  if (typeof nodeCondition !== 'string' || nodeCondition.trim() === '') {
    problem(
      context,
      ['edges', index, 'sourceHandle'],
      `${where}: leaves the "${handle}" handle of ${label(source)}, which has no condition`,
      'missing_condition',
    );
    return undefined;
  }
  if (TRUE_HANDLES.has(handle)) return nodeCondition.trim();
  const parsed = parseCondition(nodeCondition);
  const negated = !('error' in parsed) && parsed.length === 1 && parsed[0] !== undefined ? negate(parsed[0]) : undefined;
  if (negated === undefined) {
    problem(
      context,
      ['edges', index],
      `${where}: cannot take the "false" branch of ${JSON.stringify(nodeCondition)}; give the edge its own condition`,
      'invalid_condition',
    );
  }
  return negated;
};

/** Rewrites the graph validator's problems (by index in the translated graph) to name the builder's nodes and edges. */
const locate = (context: Context, error: GraphDefinitionError, edgeIndexes: readonly number[], edges: readonly BuilderEdge[]): void => {
  const nodeIndex = (id: string) => context.nodes.findIndex((node) => node.id === id);
  for (const text of error.problems) {
    const edge = /^edges\[(\d+)\] \([^)]*\): (.*)$/s.exec(text);
    if (edge) {
      const builderIndex = edgeIndexes[Number(edge[1])] ?? 0;
      const builder = edges[builderIndex];
      problem(
        context,
        ['edges', builderIndex],
        `edge ${JSON.stringify(builder?.id)} (${builder?.source} → ${builder?.target}): ${edge[2]}`,
        'invalid_edge',
      );
      continue;
    }
    const node = /^(?:nodes\[\d+\] \("([^"]*)"\)|node "([^"]*)")(?:\.config)?:? (.*)$/s.exec(text);
    const id = node?.[1] ?? node?.[2];
    if (node && id !== undefined && nodeIndex(id) >= 0) {
      problem(context, ['nodes', nodeIndex(id)], `node ${JSON.stringify(id)}: ${node[3]}`, 'invalid_node');
      continue;
    }
    const loop = /^nodes ([^:]+): (.*)$/s.exec(text);
    const firstId = loop?.[1]?.split(' → ')[0];
    if (loop && firstId !== undefined && nodeIndex(firstId) >= 0) {
      problem(context, ['nodes', nodeIndex(firstId)], text, 'invalid_loop');
      continue;
    }
    problem(context, [], text.replace(/^entry: /, 'start: '), 'invalid_graph');
  }
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Graphs sent loosely typed (a chat's `workflow_config`, the custom execute body): each part must have the builder's shape. */
const checkShape = (context: Context, nodes: readonly unknown[], edges: readonly unknown[]): void => {
  nodes.forEach((node, index) => {
    if (!isObject(node) || typeof node['id'] !== 'string' || node['id'] === '') {
      problem(context, ['nodes', index], `nodes[${index}]: a node is an object with a string "id"`, 'invalid_node');
    } else if (
      node['data'] !== undefined &&
      (!isObject(node['data']) ||
        (node['data']['config'] !== undefined && node['data']['config'] !== null && !isObject(node['data']['config'])))
    ) {
      problem(
        context,
        ['nodes', index, 'data'],
        `node ${JSON.stringify(node['id'])}: data must be an object, its config an object`,
        'invalid_node',
      );
    } else if (typeof (node['data'] as { nodeType?: unknown } | undefined)?.nodeType !== 'string' && typeof node['type'] !== 'string') {
      problem(context, ['nodes', index, 'type'], `node ${JSON.stringify(node['id'])}: needs a type (or data.nodeType)`, 'invalid_node');
    }
  });
  const text = (value: unknown): boolean => value === undefined || value === null || typeof value === 'string';
  edges.forEach((edge, index) => {
    const data = isObject(edge) ? edge['data'] : undefined;
    const valid =
      isObject(edge) &&
      [edge['id'], edge['source'], edge['target']].every((value) => typeof value === 'string') &&
      text(edge['sourceHandle']) &&
      (data === undefined || data === null || (isObject(data) && text(data['condition'])));
    if (!valid)
      problem(
        context,
        ['edges', index],
        `edges[${index}]: an edge is an object with string "id", "source" and "target" (and data.condition text)`,
        'invalid_edge',
      );
  });
};

export type TranslateOptions = {
  /** The tools the user may use (their registry's names); a tool node naming another is refused. */
  readonly toolNames: readonly string[];
  /** The node to start at, instead of the start node's target. */
  readonly entry?: string | undefined;
};

/**
 * Translates the builder's nodes and edges into a graph definition that can run.
 * @throws {WorkflowValidationError} naming each node and edge that cannot run.
 */
export function translateWorkflow(
  nodes: readonly BuilderNode[],
  edges: readonly BuilderEdge[],
  options: TranslateOptions,
): TranslatedWorkflow {
  const context: Context = { nodes, problems: [], toolNames: options.toolNames };
  checkShape(context, nodes, edges);
  if (context.problems.length > 0) throw new WorkflowValidationError(context.problems);
  const kinds = new Map<string, string | undefined>();
  const settings = new Map<keyof WorkflowRunSettings, [unknown, string]>();
  const graphNodes: GraphNode[] = [];
  nodes.forEach((node, index) => {
    const kind = KINDS[kindOf(node)];
    if (kinds.has(node.id)) problem(context, ['nodes', index, 'id'], `${label(node)}: duplicate node id`, 'duplicate_node');
    kinds.set(node.id, kind);
    if (kind === undefined) {
      problem(
        context,
        ['nodes', index, 'data', 'nodeType'],
        `${label(node)}: type ${JSON.stringify(kindOf(node))} cannot run in this service (runnable: ${RUNNABLE_KINDS})`,
        'unsupported_node_type',
      );
      return;
    }
    if (kind === 'start' || kind === 'end') return;
    if (!IDENTIFIER.test(node.id) || RESERVED.has(node.id)) {
      problem(
        context,
        ['nodes', index, 'id'],
        `${label(node)}: an id must start with a letter and hold only letters, digits, "_" or "-" (at most 64), and not be reserved`,
        'invalid_node_id',
      );
      return;
    }
    const translated = graphNode(context, node, index, kind, settings);
    if (translated !== undefined) graphNodes.push(translated);
  });
  const starts = nodes.filter((node) => kinds.get(node.id) === 'start');
  if (starts.length > 1)
    problem(context, ['nodes', nodes.indexOf(starts[1]!)], `${label(starts[1]!)}: a workflow has one start node`, 'duplicate_start');

  const graphEdges: GraphEdge[] = [];
  const edgeIndexes: number[] = [];
  const entries: string[] = [];
  edges.forEach((edge, index) => {
    const where = `edge ${JSON.stringify(edge.id)} (${edge.source} → ${edge.target})`;
    const from = kinds.get(edge.source);
    const to = kinds.get(edge.target);
    if (!kinds.has(edge.source))
      return problem(context, ['edges', index, 'source'], `${where}: unknown source node ${JSON.stringify(edge.source)}`, 'unknown_node');
    if (!kinds.has(edge.target))
      return problem(context, ['edges', index, 'target'], `${where}: unknown target node ${JSON.stringify(edge.target)}`, 'unknown_node');
    if (from === 'end') return problem(context, ['edges', index, 'source'], `${where}: no edge may leave an end node`, 'invalid_edge');
    if (to === 'start') return problem(context, ['edges', index, 'target'], `${where}: no edge may lead to the start node`, 'invalid_edge');
    if (from === 'start') {
      if (to === 'end')
        return problem(context, ['edges', index], `${where}: the start node must lead to a node that does something`, 'invalid_edge');
      entries.push(edge.target);
      return undefined;
    }
    const condition = edgeCondition(
      context,
      edge,
      index,
      nodes.find((node) => node.id === edge.source),
    );
    graphEdges.push({ from: edge.source, to: to === 'end' ? END : edge.target, ...(condition === undefined ? {} : { condition }) });
    edgeIndexes.push(index);
    return undefined;
  });

  let entry = options.entry;
  if (entry === undefined) {
    if (entries.length > 1 && starts[0] !== undefined) {
      problem(
        context,
        ['nodes', nodes.indexOf(starts[0])],
        `${label(starts[0])}: the start node has ${entries.length} outgoing edges; a run starts at one node`,
        'invalid_start',
      );
    }
    entry = entries[0];
    if (entry === undefined && starts[0] !== undefined) {
      problem(
        context,
        ['nodes', nodes.indexOf(starts[0])],
        `${label(starts[0])}: the start node has no outgoing edge; connect it to the first node`,
        'invalid_start',
      );
    } else if (entry === undefined) {
      // No start node: the one node nothing leads to.
      const targets = new Set(edges.map((edge) => edge.target));
      const roots = graphNodes.filter((node) => !targets.has(node.id)).map((node) => node.id);
      if (roots.length === 1) entry = roots[0];
      else {
        problem(
          context,
          ['nodes'],
          `no start node, and ${roots.length === 0 ? 'every node has an incoming edge' : `${roots.length} nodes have no incoming edge (${roots.join(', ')})`}: add a start node leading to the first one`,
          'missing_start',
        );
      }
    }
  }
  if (graphNodes.length === 0 && context.problems.length === 0)
    problem(context, ['nodes'], 'a workflow needs at least one model, tool, conditional or memory node', 'empty');
  if (context.problems.length > 0) throw new WorkflowValidationError(context.problems);

  const definition: GraphDefinition = { name: CUSTOM_WORKFLOW, nodes: graphNodes, edges: graphEdges, entry: entry ?? '' };
  try {
    validateGraphDefinition(definition, { toolNames: options.toolNames });
  } catch (error) {
    if (!(error instanceof GraphDefinitionError)) throw error;
    locate(context, error, edgeIndexes, edges);
    throw new WorkflowValidationError(context.problems);
  }
  const setting = <T>(key: keyof WorkflowRunSettings) => settings.get(key)?.[0] as T | undefined;
  return {
    definition,
    settings: {
      provider: setting<string>('provider'),
      model: setting<string>('model'),
      temperature: setting<number>('temperature'),
      maxTokens: setting<number>('maxTokens'),
    },
  };
}

const NODE_SPACING = 120;

/**
 * A graph definition in the builder's format: a start node, its nodes top to bottom and
 * an end node. `allTools`: tools nodes offer every tool the user has (their list is left
 * empty), as the built-in templates do.
 */
export function toBuilderFormat(
  definition: GraphDefinition,
  options: { allTools?: boolean } = {},
): { nodes: BuilderNode[]; edges: BuilderEdge[] } {
  const builderNode = (id: string, nodeType: string, index: number, config: Record<string, unknown>): BuilderNode => ({
    id,
    type: nodeType,
    position: { x: 0, y: index * NODE_SPACING },
    data: { label: id, nodeType, config },
  });
  const configOfNode = (node: GraphNode): Record<string, unknown> => {
    switch (node.type) {
      case 'model':
        return {
          ...(node.config?.systemPrompt === undefined ? {} : { system_message: node.config.systemPrompt }),
          ...(node.config?.instruction === undefined ? {} : { instruction: node.config.instruction }),
          ...(node.config?.tools === undefined ? {} : { tool_choice: node.config.tools }),
        };
      case 'tools':
        return { tools: options.allTools === true ? [] : [...node.config.tools] };
      case 'memory':
        return { window: node.config.window };
      case 'conditional':
        return {};
    }
  };
  const nodes = [
    builderNode('start', 'start', 0, {}),
    ...definition.nodes.map((node, index) =>
      builderNode(node.id, node.type === 'tools' ? 'tool' : node.type, index + 1, configOfNode(node)),
    ),
    builderNode('end', 'end', definition.nodes.length + 1, {}),
  ];
  const edges: BuilderEdge[] = [
    { id: 'e0', source: 'start', target: definition.entry },
    ...definition.edges.map((edge, index) => ({
      id: `e${index + 1}`,
      source: edge.from,
      target: edge.to === END ? 'end' : edge.to,
      ...(edge.condition === undefined ? {} : { data: { condition: edge.condition } }),
    })),
  ];
  return { nodes, edges };
}
