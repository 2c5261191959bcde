import { END, START } from '@langchain/langgraph';
import { z } from 'zod';
import { BUILTIN_TOOL_NAMES } from '../tools/tool-registry.js';
import { checkRouting } from './routing-checks.js';

/**
 * Graph definitions: JSON documents describing a LangGraph workflow of model, tools,
 * memory and conditional (routing-only) nodes.
 *
 * Edges run between node ids; the end of the graph is `"__end__"` (LangGraph's `END`).
 * The start is not written as an edge: `entry` names the first node.
 */

/** `"__end__"`: the same string as LangGraph's `END`. */
export const END_NODE: typeof END = END;
/** `"__start__"`: never written in a definition (see `entry`), reserved as an id. */
export const START_NODE: typeof START = START;
export const NODE_TYPES = ['model', 'tools', 'conditional', 'memory'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

/** Ids LangGraph would reject or that collide with the state's channels. */
const RESERVED_IDS = new Set([START_NODE, END_NODE, 'messages', 'toolCallCount']);

export const ModelNodeConfigSchema = z.strictObject({
  /** Prepended as the system message of every call this node makes. */
  systemPrompt: z.string().optional(),
  /** Appended to the system message, e.g. to tell the model to answer now. */
  instruction: z.string().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /**
   * `auto` (default): the graph's tools are bound and the model may call them.
   * `none`: bound with `tool_choice: "none"` — the model sees them but may not call
   *   them (Anthropic rejects a history holding tool calls unless tools are defined,
   *   and an unchanged tool list keeps the prompt cache warm).
   * `omit`: no tools are bound.
   */
  tools: z.enum(['auto', 'none', 'omit']).optional(),
});
export const ToolsNodeConfigSchema = z.strictObject({
  tools: z.array(z.string().min(1)).min(1, 'a tools node needs at least one tool'),
});
export const MemoryNodeConfigSchema = z.strictObject({
  /** Messages kept, system messages not counted. */
  window: z.number().int().positive(),
});
export const ConditionalNodeConfigSchema = z.strictObject({});

export type ModelNodeConfig = z.infer<typeof ModelNodeConfigSchema>;
export type ToolsNodeConfig = z.infer<typeof ToolsNodeConfigSchema>;
export type MemoryNodeConfig = z.infer<typeof MemoryNodeConfigSchema>;

export type GraphNode =
  | { id: string; type: 'model'; config?: ModelNodeConfig }
  | { id: string; type: 'tools'; config: ToolsNodeConfig }
  | { id: string; type: 'memory'; config: MemoryNodeConfig }
  | { id: string; type: 'conditional'; config?: Record<string, never> };

export type GraphEdge = { from: string; to: string; condition?: string };

export type GraphDefinition = {
  name: string;
  description?: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  entry: string;
};

const CONFIG_SCHEMAS = {
  model: ModelNodeConfigSchema.optional(),
  tools: ToolsNodeConfigSchema,
  memory: MemoryNodeConfigSchema,
  conditional: ConditionalNodeConfigSchema.optional(),
} satisfies Record<NodeType, z.ZodType>;

const Identifier = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'must start with a letter and hold only letters, digits, "_" or "-" (at most 64)');

/** The shape of a definition; the cross-references are checked by `validateGraphDefinition`. */
export const GraphDefinitionShapeSchema = z.strictObject({
  name: Identifier,
  description: z.string().optional(),
  nodes: z
    .array(z.strictObject({ id: Identifier, type: z.enum(NODE_TYPES), config: z.unknown().optional() }))
    .min(1, 'a graph needs at least one node'),
  edges: z.array(z.strictObject({ from: z.string().min(1), to: z.string().min(1), condition: z.string().optional() })),
  entry: z.string().min(1),
});

/** A definition that is not a valid graph; `problems` lists every problem found. */
export class GraphDefinitionError extends Error {
  override readonly name = 'GraphDefinitionError';
  constructor(
    readonly graphName: string | undefined,
    readonly problems: readonly string[],
  ) {
    super(
      `Invalid graph definition${graphName ? ` ${JSON.stringify(graphName)}` : ''}: ` +
        `${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((key, index) => (typeof key === 'number' ? `[${key}]` : `${index === 0 ? '' : '.'}${String(key)}`)).join('');
}

function formatIssues(error: z.ZodError, prefix: string): string[] {
  return error.issues.map((issue) => {
    const path = formatPath(issue.path);
    const where = [prefix, path].filter(Boolean).join(prefix && path && !path.startsWith('[') ? '.' : '');
    return where ? `${where}: ${issue.message}` : issue.message;
  });
}

export type ValidateOptions = {
  /** Tools a tools node may name. Defaults to the built-in tools. */
  toolNames?: Iterable<string>;
};

/**
 * Checks a JSON graph definition and returns it typed.
 * @throws {GraphDefinitionError} listing every problem: bad shape, unknown node types,
 * duplicate or reserved ids, bad node config, unknown tools, edges to unknown nodes,
 * unknown conditions, nodes whose edges leave a case uncovered or an edge never taken,
 * unreachable nodes and nodes with no path to `__end__`.
 */
export function validateGraphDefinition(json: unknown, options: ValidateOptions = {}): GraphDefinition {
  const shape = GraphDefinitionShapeSchema.safeParse(json);
  if (!shape.success) {
    const name = typeof json === 'object' && json !== null && 'name' in json && typeof json.name === 'string' ? json.name : undefined;
    throw new GraphDefinitionError(name, formatIssues(shape.error, ''));
  }
  const raw = shape.data;
  const problems: string[] = [];
  const knownTools = new Set(options.toolNames ?? BUILTIN_TOOL_NAMES);

  const seen = new Set<string>();
  const nodes: GraphNode[] = [];
  for (const [index, node] of raw.nodes.entries()) {
    const where = `nodes[${index}] (${JSON.stringify(node.id)})`;
    if (RESERVED_IDS.has(node.id)) problems.push(`${where}: the id ${JSON.stringify(node.id)} is reserved`);
    if (seen.has(node.id)) problems.push(`${where}: duplicate node id ${JSON.stringify(node.id)}`);
    seen.add(node.id);
    const config = CONFIG_SCHEMAS[node.type].safeParse(node.config);
    if (!config.success) {
      problems.push(...formatIssues(config.error, `${where}.config`));
      continue;
    }
    if (node.type === 'tools') {
      const tools = (config.data as ToolsNodeConfig).tools;
      for (const name of tools) {
        if (!knownTools.has(name)) {
          problems.push(`${where}: unknown tool ${JSON.stringify(name)} (known tools: ${[...knownTools].join(', ')})`);
        }
      }
      const duplicates = tools.filter((name, i) => tools.indexOf(name) !== i);
      if (duplicates.length > 0) problems.push(`${where}: tool listed twice: ${[...new Set(duplicates)].join(', ')}`);
    }
    nodes.push({ id: node.id, type: node.type, ...(config.data === undefined ? {} : { config: config.data }) } as GraphNode);
  }

  const definition: GraphDefinition = {
    name: raw.name,
    ...(raw.description === undefined ? {} : { description: raw.description }),
    nodes,
    edges: raw.edges.map((edge) => ({ ...edge })),
    entry: raw.entry,
  };
  problems.push(...checkRouting(definition, seen));
  if (problems.length > 0) throw new GraphDefinitionError(raw.name, problems);
  return definition;
}
