import { AIMessage, type BaseMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import { selectWindow } from '../../src/graphs/memory.js';

const human = (text: string) => new HumanMessage({ id: text, content: text });
const ai = (text: string) => new AIMessage({ id: text, content: text });
const askTools = (id: string, ...callIds: string[]) =>
  new AIMessage({ id, content: '', tool_calls: callIds.map((callId) => ({ id: callId, name: 'calculator', args: { expression: '1' } })) });
const result = (callId: string) => new ToolMessage({ id: `result-${callId}`, content: '1', tool_call_id: callId });
const ids = (messages: BaseMessage[]) => messages.map((message) => message.id);

describe('selectWindow', () => {
  it('keeps the last N messages', () => {
    const messages = [human('h1'), ai('a1'), human('h2'), ai('a2'), human('h3')];
    expect(ids(selectWindow(messages, 3))).toEqual(['h2', 'a2', 'h3']);
    expect(ids(selectWindow(messages, 10))).toEqual(['h1', 'a1', 'h2', 'a2', 'h3']);
  });

  it('keeps system messages without counting them', () => {
    const messages = [new SystemMessage({ id: 'sys', content: 'Be brief.' }), human('h1'), ai('a1'), human('h2')];
    expect(ids(selectWindow(messages, 2))).toEqual(['sys', 'a1', 'h2']);
  });

  it('never keeps tool results without the AI message that asked for them', () => {
    const messages = [human('h1'), askTools('a1', 'c1', 'c2'), result('c1'), result('c2'), ai('a2'), human('h2')];
    // The last 4 would open on result-c2, whose call is dropped: the window shrinks.
    expect(ids(selectWindow(messages, 4))).toEqual(['a2', 'h2']);
    // The last 5 open on the AI message with its calls: kept whole.
    expect(ids(selectWindow(messages, 5))).toEqual(['a1', 'result-c1', 'result-c2', 'a2', 'h2']);
  });
});
