import { type BaseMessage, RemoveMessage } from '@langchain/core/messages';
import { REMOVE_ALL_MESSAGES } from '@langchain/langgraph';
import type { GraphState, GraphUpdate } from './state.js';

/**
 * The messages a window of `window` keeps: every system message (they are not
 * counted) plus the last `window` others. A window never opens on a tool result whose
 * AI message it dropped — providers reject a tool result without its call — so it
 * may hold fewer than `window` messages.
 */
export function selectWindow(messages: readonly BaseMessage[], window: number): BaseMessage[] {
  const counted = messages.filter((message) => message.getType() !== 'system');
  let start = Math.max(0, counted.length - window);
  while (start < counted.length && counted[start]?.getType() === 'tool') start += 1;
  const kept = new Set(counted.slice(start));
  return messages.filter((message) => message.getType() === 'system' || kept.has(message));
}

/** A memory node: trims the state's messages to the window (the removal is the state update). */
export function createMemoryNode(window: number) {
  return (state: GraphState): GraphUpdate => {
    const kept = selectWindow(state.messages, window);
    if (kept.length === state.messages.length) return {};
    // Remove-all then re-add: exact even for messages that somehow lack an id.
    return { messages: [new RemoveMessage({ id: REMOVE_ALL_MESSAGES }), ...kept] };
  };
}
