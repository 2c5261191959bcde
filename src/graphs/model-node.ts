import type { BaseLanguageModelInput } from '@langchain/core/language_models/base';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, type AIMessageChunk, type BaseMessage, SystemMessage } from '@langchain/core/messages';
import type { Runnable, RunnableConfig } from '@langchain/core/runnables';
import type { StructuredToolInterface } from '@langchain/core/tools';
import type { ModelNodeConfig } from './definition.js';
import type { GraphState, GraphUpdate } from './state.js';

/** A graph could be built from a valid definition but not with these dependencies. */
export class GraphBuildError extends Error {
  override readonly name = 'GraphBuildError';
}

/**
 * One system message at the front: the node's prompt, then whatever system messages
 * the conversation itself starts with, then the node's instruction. Merged, because
 * some providers (Anthropic) accept a single system message only, and first.
 */
export function withSystemPrompt(messages: readonly BaseMessage[], prompt?: string, instruction?: string): BaseMessage[] {
  if (!prompt && !instruction) return [...messages];
  let lead = 0;
  while (lead < messages.length && messages[lead]?.getType() === 'system') lead += 1;
  const parts = [prompt, ...messages.slice(0, lead).map((message) => message.text), instruction].filter(
    (part): part is string => typeof part === 'string' && part.trim() !== '',
  );
  return [new SystemMessage(parts.join('\n\n')), ...messages.slice(lead)];
}

/** The response without tool calls, for nodes whose model was told not to make any. */
function withoutToolCalls(message: AIMessage): AIMessage {
  if ((message.tool_calls?.length ?? 0) === 0 && (message.invalid_tool_calls?.length ?? 0) === 0) return message;
  const { tool_calls: _dropped, ...additionalKwargs } = message.additional_kwargs;
  const content = Array.isArray(message.content)
    ? message.content.filter((block) => !['tool_use', 'tool_call', 'function_call'].includes(String(block.type)))
    : message.content;
  return new AIMessage({
    ...(message.id === undefined ? {} : { id: message.id }),
    content,
    additional_kwargs: additionalKwargs,
    response_metadata: message.response_metadata,
    ...(message.usage_metadata === undefined ? {} : { usage_metadata: message.usage_metadata }),
  });
}

/**
 * Makes one model call for a model node. The default just invokes the runnable; the
 * runtime passes its own to wrap every call (per-call timeout, retries) — it must
 * hand `config` on to `runnable.invoke` so callbacks and the signal still reach it.
 */
export type InvokeModel = (
  runnable: { invoke: (input: BaseMessage[], config?: RunnableConfig) => Promise<BaseMessage> },
  messages: BaseMessage[],
  config: RunnableConfig | undefined,
) => Promise<BaseMessage>;

const invokeDirectly: InvokeModel = (runnable, messages, config) => runnable.invoke(messages, config);

/** What a model node calls: its model, bound for the node's tool mode, and how to call it. */
export type NodeModelCall = {
  readonly runnable: Runnable<BaseLanguageModelInput, AIMessageChunk>;
  readonly invokeModel: InvokeModel;
};

/**
 * The model as a node calls it: with the graph's tools bound (or `tool_choice: "none"`)
 * unless the node omits them.
 * @throws {GraphBuildError} when tools must be bound and the model cannot bind tools.
 */
export function bindNodeModel(
  model: BaseChatModel,
  tools: readonly StructuredToolInterface[],
  config: ModelNodeConfig,
  invokeModel: InvokeModel = invokeDirectly,
): NodeModelCall {
  const mode = config.tools ?? 'auto';
  if (tools.length === 0 || mode === 'omit') return { runnable: model, invokeModel };
  if (typeof model.bindTools !== 'function') {
    throw new GraphBuildError(`The model ${model.getName()} cannot bind tools, but this graph's model nodes need them`);
  }
  const runnable = mode === 'none' ? model.bindTools([...tools], { tool_choice: 'none' }) : model.bindTools([...tools]);
  return { runnable, invokeModel };
}

/**
 * A model node: prepends the system prompt, calls the model with the node's
 * RunnableConfig (so callbacks, streamEvents and the abort signal reach the model call)
 * and appends its reply. The model is looked up on each call (`resolve` gets the call's
 * RunnableConfig): one compiled graph then serves many runs, each with its own model.
 */
export function createModelNodeWith(config: ModelNodeConfig, resolve: (runConfig: RunnableConfig | undefined) => NodeModelCall) {
  const mode = config.tools ?? 'auto';
  return async (state: GraphState, runConfig?: RunnableConfig): Promise<GraphUpdate> => {
    const { runnable, invokeModel } = resolve(runConfig);
    const messages = withSystemPrompt(state.messages, config.systemPrompt, config.instruction);
    const response = await invokeModel(runnable, messages, runConfig);
    // A node that forbade tool calls must not leave unanswered ones in the history.
    return { messages: [mode !== 'auto' && AIMessage.isInstance(response) ? withoutToolCalls(response) : response] };
  };
}
