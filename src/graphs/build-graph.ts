import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import { END, START, StateGraph } from '@langchain/langgraph';
import type { ToolRegistry } from '../tools/tool-registry.js';
import { type Condition, isUnconditional, parseCondition } from './conditions.js';
import { type GraphDefinition, type ModelNodeConfig, validateGraphDefinition } from './definition.js';
import { createMemoryNode } from './memory.js';
import { GraphBuildError, type InvokeModel, createModelNode } from './model-node.js';
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

/**
 * Builds and compiles the LangGraph graph a definition describes. The graph does no
 * I/O of its own: it calls `deps.model` and the registry's tools, passing each node's
 * RunnableConfig through so `streamEvents` sees every model and tool call and the
 * run's `signal` stops them.
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
  const valid = validateGraphDefinition(definition, { toolNames: deps.tools.names() });
  const toolNames = [...new Set(valid.nodes.flatMap((node) => (node.type === 'tools' ? node.config.tools : [])))];
  const graphTools = deps.tools.pick(toolNames);

  const builder = new StateGraph(GraphStateAnnotation) as unknown as Builder;
  for (const node of valid.nodes) {
    switch (node.type) {
      case 'model': {
        const config = node.config ?? {};
        const model = modelFor(config, node.id, deps);
        const invokeModel = deps.invokeModel;
        builder.addNode(node.id, createModelNode({ model, tools: graphTools, config, ...(invokeModel ? { invokeModel } : {}) }));
        break;
      }
      case 'tools':
        builder.addNode(
          node.id,
          createToolsNode({ tools: deps.tools.pick(node.config.tools), toolCallLimit: deps.toolCallLimit }),
        );
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
        const facts = { hasToolCalls: lastHasToolCalls(state.messages), toolCallCount: state.toolCallCount, limit: deps.toolCallLimit };
        // Validation proved some edge always applies; END is only a defensive fallback.
        return selectEdge(outgoing, facts)?.to ?? END;
      },
      targets,
    );
  }

  // Each tool call costs at most one pass through every node; the margin covers the
  // passes before the first and after the last tool call.
  const recursionLimit = valid.nodes.length * (deps.toolCallLimit + 2) + 10;
  return builder.compile({ name: valid.name }).withConfig({ recursionLimit });
}

export type ChatGraph = ReturnType<typeof createGraph>;
