import { AIMessage, type BaseMessage, type ToolCall, ToolMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { isGraphBubbleUp } from '@langchain/langgraph';
import type { GraphState, GraphUpdate } from './state.js';

export type ToolsNodeOptions = {
  tools: readonly StructuredToolInterface[];
  /** Most tool calls one run may make; calls past it are answered, not run. */
  toolCallLimit: number;
};

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorMessage(call: ToolCall, text: string): ToolMessage {
  return new ToolMessage({ status: 'error', content: `Error: ${text}`, name: call.name, tool_call_id: call.id ?? '' });
}

/** Tool calls of the last AI message that no tool message answers yet. */
function pendingToolCalls(messages: readonly BaseMessage[]): ToolCall[] {
  const answered = new Set(messages.filter(ToolMessage.isInstance).map((message) => message.tool_call_id));
  const lastAi = messages.findLast((message) => AIMessage.isInstance(message));
  return (lastAi?.tool_calls ?? []).filter((call) => call.id === undefined || !answered.has(call.id));
}

/**
 * A tools node: runs the tool calls of the last AI message (in parallel, results in
 * call order) and counts them in `toolCallCount`.
 *
 * Written out rather than LangGraph's `ToolNode` for three reasons: calls past the
 * run's tool-call limit must get an answer without running (every call needs a tool
 * message or the next model call is rejected); an abort must stop the run rather than
 * become an error message the model reads; and the error text stays ours.
 * A tool that throws, an unknown tool or bad arguments become a ToolMessage with
 * status "error" — never a failed run.
 */
export function createToolsNode({ tools, toolCallLimit }: ToolsNodeOptions) {
  const byName = new Map(tools.map((tool) => [tool.name, tool]));

  const run = async (call: ToolCall, config: RunnableConfig | undefined): Promise<ToolMessage> => {
    const tool = byName.get(call.name);
    if (!tool) return errorMessage(call, `unknown tool ${JSON.stringify(call.name)}; available tools: ${[...byName.keys()].join(', ')}`);
    try {
      const output: unknown = await tool.invoke({ ...call, type: 'tool_call' }, config);
      if (ToolMessage.isInstance(output)) return output;
      const content = typeof output === 'string' ? output : JSON.stringify(output);
      return new ToolMessage({ status: 'success', content, name: call.name, tool_call_id: call.id ?? '' });
    } catch (error) {
      if (config?.signal?.aborted || isGraphBubbleUp(error)) throw error;
      return errorMessage(call, errorText(error));
    }
  };

  return async (state: GraphState, config?: RunnableConfig): Promise<GraphUpdate> => {
    const calls = pendingToolCalls(state.messages);
    if (calls.length === 0) return {};
    const budget = Math.max(0, toolCallLimit - state.toolCallCount);
    const runnable = calls.slice(0, budget);
    const refused = calls
      .slice(budget)
      .map((call) => errorMessage(call, `not run: this run reached its limit of ${toolCallLimit} tool calls; answer with what you have`));
    // One after another: each tool call is a step of the run's machine (callingTool),
    // and its span and events must not interleave with another call's.
    const results = [];
    for (const call of runnable) {
      results.push(await run(call, config));
    }
    return { messages: [...results, ...refused], toolCallCount: state.toolCallCount + runnable.length };
  };
}
