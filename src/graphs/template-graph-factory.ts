import type { GraphFactory, RunnableGraph } from '../runtime/run-types.js';
import { createToolRegistry, type ToolRegistry } from '../tools/tool-registry.js';
import { createGraph } from './build-graph.js';
import type { GraphDefinition } from './definition.js';
import { getTemplate } from './templates.js';

export type TemplateGraphFactoryOptions = {
  /** The tools a user's runs are offered (built-ins they kept, their enabled MCP tools). */
  readonly toolsFor: (userId: string) => Promise<ToolRegistry>;
};

/** The tools nodes of a built-in template offer the user's whole tool set. */
const offering = (definition: GraphDefinition, names: readonly string[]): GraphDefinition => ({
  ...definition,
  nodes: definition.nodes.map((node) => (node.type === 'tools' ? { ...node, config: { tools: [...names] } } : node)),
});

/**
 * The runtime's graph factory for the built-in templates and users' workflow definitions
 * (`deps.definition`, validated against the user's tools before the run). A template without tools
 * nodes is built at once; one with tools nodes (`chat_with_tools`) reads the run's user's
 * tool set when the run starts (the graph's first step), so a tool switched on or off
 * on any instance applies to the next run, and offers those of them the run allows (a
 * profile's available_tools). A run with no tool left gets the `chat` graph (a tools
 * node needs a tool). Compiled graphs are shared by every run with the
 * same tool set (see UserToolSets and createGraph).
 *
 * @throws {UnknownTemplateError} for an unknown workflow, before the run starts.
 */
export const createTemplateGraphFactory = ({ toolsFor }: TemplateGraphFactoryOptions): GraphFactory => {
  // Graphs without tools nodes bind no tools: one registry serves them all (one compilation each).
  const noTools = createToolRegistry();
  return (workflow, deps) => {
    // A user's definition names its tools itself; a template's tools nodes offer the whole set.
    const custom = deps.definition;
    const definition = custom ?? getTemplate(workflow);
    const build = (tools: ToolRegistry, graphDefinition: GraphDefinition) =>
      createGraph(graphDefinition, { model: deps.model, tools, toolCallLimit: deps.toolCallLimit, invokeModel: deps.invokeModel });
    if (!definition.nodes.some((node) => node.type === 'tools')) {
      return build(noTools, definition);
    }
    const graph: RunnableGraph = {
      invoke: async (input, config) => {
        const tools = await toolsFor(deps.userId);
        if (custom !== undefined) return build(tools, custom).invoke(input, config);
        const names = tools.names().filter((name) => deps.allowedTools === undefined || deps.allowedTools.includes(name));
        return build(tools, names.length === 0 ? getTemplate('chat') : offering(definition, names)).invoke(input, config);
      },
    };
    return graph;
  };
};
