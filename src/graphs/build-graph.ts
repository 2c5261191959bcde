import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { END, START, StateGraph } from '@langchain/langgraph';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { type Condition, isUnconditional, parseCondition } from './conditions.js';
import { type GraphDefinition, type ModelNodeConfig, validateGraphDefinition } from './definition.js';
import { createMemoryNode } from './memory.js';
import { GraphBuildError, type InvokeModel, type NodeModelCall, bindNodeModel, createModelNodeWith } from './model-node.js';
import { selectEdge } from './routing-checks.js';
import { type GraphState, GraphStateAnnotation, type GraphUpdate } from './state.js';
import { createToolsNode } from './tools-node.js';

export { GraphBuildError, type InvokeModel } from './model-node.js';

export type ModelSettings = Pick<ModelNodeConfig, 'temperature' | 'maxTokens'>;

export type CreateGraphDeps = {
  model: BaseChatModel;
  tools: ToolRegistry;
  /** Most tool calls one run may make; `limit` in edge conditions stands for it. */
  toolCallLimit: number;
  /**
   * Returns the model configured with a model node's `temperature` / `maxTokens`
   * (LangChain has no per-call option for them: they are constructor fields of each
   * provider's model). Required only by definitions that set them.
   */
  configureModel?: (model: BaseChatModel, settings: ModelSettings) => BaseChatModel;
  /** Wraps every model call (the runtime's timeouts and retries); defaults to a plain invoke. */
  invokeModel?: InvokeModel;
};

function lastHasToolCalls(messages: readonly BaseMessage[]): boolean {
  const last = messages.at(-1);
  return last !== undefined && AIMessage.isInstance(last) && (last.tool_calls?.length ?? 0) > 0;
}

// Node names are only known at run time, so the builder is typed with `string` names.
type Builder = StateGraph<typeof GraphStateAnnotation, GraphState, GraphUpdate, string>;

function modelFor(config: ModelNodeConfig, nodeId: string, deps: CreateGraphDeps): BaseChatModel {
  if (config.temperature === undefined && config.maxTokens === undefined) return deps.model;
  if (!deps.configureModel) {
    throw new GraphBuildError(
      `Model node ${JSON.stringify(nodeId)} sets temperature/maxTokens but no configureModel was given to apply them`,
    );
  }
  return deps.configureModel(deps.model, {
    ...(config.temperature === undefined ? {} : { temperature: config.temperature }),
    ...(config.maxTokens === undefined ? {} : { maxTokens: config.maxTokens }),
  });
}

/** Where a run's graph carries its model nodes' calls (see `createGraph`). */
const MODEL_CALLS_KEY = '__chatter_model_calls';

type ModelCalls = ReadonlyMap<string, NodeModelCall>;

function modelCallOf(nodeId: string, runConfig: RunnableConfig | undefined): NodeModelCall {
  const calls = runConfig?.configurable?.[MODEL_CALLS_KEY] as ModelCalls | undefined;
  const call = calls?.get(nodeId);
  if (call === undefined) {
    throw new GraphBuildError(`Model node ${JSON.stringify(nodeId)} was invoked without its model (use the graph createGraph returns)`);
  }
  return call;
}

/** A definition compiled for one tool registry and tool-call limit, shared by every run of it. */
type CompiledDefinition = {
  readonly graph: ReturnType<typeof compileDefinition>['graph'];
  readonly definition: GraphDefinition;
  readonly graphTools: readonly StructuredToolInterface[];
  readonly recursionLimit: number;
};

function compileDefinition(definition: GraphDefinition, tools: ToolRegistry, toolCallLimit: number) {
  const valid = validateGraphDefinition(definition, { toolNames: tools.names() });
  const toolNames = [...new Set(valid.nodes.flatMap((node) => (node.type === 'tools' ? node.config.tools : [])))];
  const graphTools = tools.pick(toolNames);

  const builder = new StateGraph(GraphStateAnnotation) as unknown as Builder;
  for (const node of valid.nodes) {
    switch (node.type) {
      case 'model': {
        const nodeId = node.id;
        builder.addNode(
          nodeId,
          createModelNodeWith(node.config ?? {}, (runConfig) => modelCallOf(nodeId, runConfig)),
        );
        break;
      }
      case 'tools':
        builder.addNode(node.id, createToolsNode({ tools: tools.pick(node.config.tools), toolCallLimit }));
        break;
      case 'memory':
        builder.addNode(node.id, createMemoryNode(node.config.window));
        break;
      case 'conditional':
        // Routing only: its outgoing edges decide, it changes nothing.
        builder.addNode(node.id, (): GraphUpdate => ({}));
        break;
    }
  }

  builder.addEdge(START, valid.entry);
  for (const node of valid.nodes) {
    const outgoing = valid.edges
      .filter((edge) => edge.from === node.id)
      .map((edge) => ({ to: edge.to, condition: parseCondition(edge.condition ?? 'always') as Condition }));
    const [only] = outgoing;
    if (outgoing.length === 1 && only && isUnconditional(only.condition)) {
      builder.addEdge(node.id, only.to);
      continue;
    }
    const targets = [...new Set(outgoing.map((edge) => edge.to))];
    builder.addConditionalEdges(
      node.id,
      (state: GraphState) => {
        const facts = { hasToolCalls: lastHasToolCalls(state.messages), toolCallCount: state.toolCallCount, limit: toolCallLimit };
        // Validation proved some edge always applies; END is only a defensive fallback.
        return selectEdge(outgoing, facts)?.to ?? END;
      },
      targets,
    );
  }

  // Each tool call costs at most one pass through every node; the margin covers the
  // passes before the first and after the last tool call.
  const recursionLimit = valid.nodes.length * (toolCallLimit + 2) + 10;
  return { graph: builder.compile({ name: valid.name }), definition: valid, graphTools, recursionLimit };
}

/** Compiled definitions per tool registry, keyed by tool-call limit and definition JSON. */
const compiled = new WeakMap<ToolRegistry, Map<string, CompiledDefinition>>();
/** Per registry; past it the least recently compiled definition is dropped. */
const MAX_COMPILED_PER_REGISTRY = 64;

function compiledFor(definition: GraphDefinition, tools: ToolRegistry, toolCallLimit: number): CompiledDefinition {
  let byKey = compiled.get(tools);
  if (byKey === undefined) {
    byKey = new Map();
    compiled.set(tools, byKey);
  }
  const key = `${toolCallLimit}:${JSON.stringify(definition)}`;
  let entry = byKey.get(key);
  if (entry === undefined) {
    entry = compileDefinition(definition, tools, toolCallLimit);
    if (byKey.size >= MAX_COMPILED_PER_REGISTRY) {
      const [oldest] = byKey.keys();
      if (oldest !== undefined) byKey.delete(oldest);
    }
    byKey.set(key, entry);
  }
  return entry;
}

/**
 * Builds the LangGraph graph a definition describes. The graph does no I/O of its own:
 * it calls `deps.model` and the registry's tools, passing each node's RunnableConfig
 * through so `streamEvents` sees every model and tool call and the run's `signal`
 * stops them.
 *
 * A definition is validated and compiled once per tool registry and tool-call limit
 * (compiling costs far more than a short run); each call binds its own model and
 * `invokeModel` to that shared graph through its config, so graphs from two calls
 * never share a model.
 *
 * State: `{ messages: BaseMessage[], toolCallCount: number }`. Input:
 * `{ messages: [...history, new HumanMessage(text)] }`.
 *
 * @throws {GraphDefinitionError} when the definition is invalid (it is re-validated
 * against this registry's tools).
 * @throws {GraphBuildError} when the model cannot bind tools the graph needs, or a node
 * sets model settings and no `configureModel` was given.
 */
export function createGraph(definition: GraphDefinition, deps: CreateGraphDeps) {
  if (!Number.isInteger(deps.toolCallLimit) || deps.toolCallLimit < 0) {
    throw new GraphBuildError(`toolCallLimit must be a non-negative integer, got ${deps.toolCallLimit}`);
  }
  const { graph, definition: valid, graphTools, recursionLimit } = compiledFor(definition, deps.tools, deps.toolCallLimit);
  const calls = new Map<string, NodeModelCall>();
  for (const node of valid.nodes) {
    if (node.type === 'model') {
      const config = node.config ?? {};
      calls.set(node.id, bindNodeModel(modelFor(config, node.id, deps), graphTools, config, deps.invokeModel));
    }
  }
  return graph.withConfig({ recursionLimit, configurable: { [MODEL_CALLS_KEY]: calls } });
}

export type ChatGraph = ReturnType<typeof createGraph>;
