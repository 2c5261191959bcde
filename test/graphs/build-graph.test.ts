import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { AIMessage, type BaseMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { type StructuredToolInterface, tool } from '@langchain/core/tools';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GraphBuildError, createGraph } from '../../src/graphs/build-graph.js';
import type { GraphDefinition } from '../../src/graphs/definition.js';
import { FINAL_ANSWER_INSTRUCTION, getTemplate } from '../../src/graphs/templates.js';
import { ScriptedChatModel, type ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { createToolRegistry } from '../../src/tools/tool-registry.js';

const SYSTEM_PROMPT = 'You are a helpful assistant.';

function build(
  definition: GraphDefinition,
  turns: ScriptedTurn[],
  { toolCallLimit = 5, extraTools = [] }: { toolCallLimit?: number; extraTools?: StructuredToolInterface[] } = {},
) {
  const model = new ScriptedChatModel({ turns });
  const tools = createToolRegistry({ now: () => new Date('2024-01-01T00:00:00.000Z'), extraTools });
  return { model, graph: createGraph(definition, { model, tools, toolCallLimit }) };
}

/** chat_with_tools whose tools node also offers the given extra tools. */
function toolsTemplateWith(...names: string[]): GraphDefinition {
  const definition = getTemplate('chat_with_tools');
  const toolsNode = definition.nodes.find((node) => node.type === 'tools');
  if (toolsNode?.type !== 'tools') throw new Error('chat_with_tools has no tools node');
  toolsNode.config.tools.push(...names);
  return definition;
}

const calc = (expression: string, id?: string) => ({ name: 'calculator', args: { expression }, ...(id ? { id } : {}) });
const summary = (messages: BaseMessage[]) =>
  messages.map(
    (message) => `${message.getType()}: ${typeof message.content === 'string' ? message.content : JSON.stringify(message.content)}`,
  );
const toolMessages = (messages: BaseMessage[]) => messages.filter((message) => ToolMessage.isInstance(message));

/** Records the call options each model call started with (a callback, as the runtime's would). */
class CallOptionsRecorder extends BaseCallbackHandler {
  name = 'call-options-recorder';
  readonly options: Record<string, unknown>[] = [];
  override async handleChatModelStart(
    _llm: unknown,
    _messages: unknown,
    _runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
  ): Promise<void> {
    this.options.push((extraParams?.options ?? {}) as Record<string, unknown>);
  }
}

describe('chat template', () => {
  it('answers with one model call after the system prompt', async () => {
    const { model, graph } = build(getTemplate('chat'), [{ content: 'Hello! How can I help?' }]);
    const result = await graph.invoke({ messages: [new HumanMessage('hi')] });
    expect(summary(result.messages)).toEqual(['human: hi', 'ai: Hello! How can I help?']);
    expect(result.toolCallCount).toBe(0);
    expect(model.calls).toHaveLength(1);
    expect(summary(model.calls[0]?.messages ?? [])).toEqual([`system: ${SYSTEM_PROMPT}`, 'human: hi']);
    expect(model.calls[0]?.tools).toEqual([]);
  });

  it('keeps only the last N messages of the history', async () => {
    const definition = getTemplate('chat');
    const memory = definition.nodes.find((node) => node.type === 'memory');
    if (memory?.type !== 'memory') throw new Error('chat has no memory node');
    memory.config.window = 3;
    const { model, graph } = build(definition, [{ content: 'a4' }]);
    const history = [new HumanMessage('h1'), new AIMessage('a1'), new HumanMessage('h2'), new AIMessage('a2'), new HumanMessage('h3')];
    const result = await graph.invoke({ messages: [...history, new AIMessage('a3'), new HumanMessage('h4')] });
    expect(summary(model.calls[0]?.messages ?? [])).toEqual([`system: ${SYSTEM_PROMPT}`, 'human: h3', 'ai: a3', 'human: h4']);
    expect(summary(result.messages)).toEqual(['human: h3', 'ai: a3', 'human: h4', 'ai: a4']);
  });

  it('merges a system message of the conversation into the one system prompt', async () => {
    const { model, graph } = build(getTemplate('chat'), [{ content: 'Bonjour' }]);
    await graph.invoke({ messages: [new SystemMessage('Answer in French.'), new HumanMessage('hi')] });
    expect(summary(model.calls[0]?.messages ?? [])).toEqual([`system: ${SYSTEM_PROMPT}\n\nAnswer in French.`, 'human: hi']);
  });
});

describe('chat_with_tools template', () => {
  it('runs two calculator calls then answers: three model calls, two tool messages', async () => {
    const { model, graph } = build(getTemplate('chat_with_tools'), [
      { content: '', toolCalls: [calc('2 + 2')] },
      { content: '', toolCalls: [calc('4 * 10.5')] },
      { content: 'The result is 42.' },
    ]);
    const result = await graph.invoke({ messages: [new HumanMessage('What is (2 + 2) * 10.5?')] });
    expect(model.calls).toHaveLength(3);
    expect(result.toolCallCount).toBe(2);
    const results = toolMessages(result.messages);
    expect(results.map((message) => [message.name, message.content, message.status])).toEqual([
      ['calculator', '4', 'success'],
      ['calculator', '42', 'success'],
    ]);
    expect(results.map((message) => message.tool_call_id)).toEqual(['call_0_0', 'call_1_0']);
    expect(result.messages.at(-1)?.content).toBe('The result is 42.');
    // Every call binds the graph's tools and sees the results so far.
    expect(model.calls.map((call) => call.tools)).toEqual(Array(3).fill(['calculator', 'current_time']));
    expect(toolMessages(model.calls[2]?.messages ?? [])).toHaveLength(2);
  });

  it('answers without tools as soon as the model asks for none', async () => {
    const { model, graph } = build(getTemplate('chat_with_tools'), [{ content: 'No tools needed.' }]);
    const result = await graph.invoke({ messages: [new HumanMessage('hello')] });
    expect(model.calls).toHaveLength(1);
    expect(result.toolCallCount).toBe(0);
    expect(summary(result.messages)).toEqual(['human: hello', 'ai: No tools needed.']);
  });

  it('forces a final answer with tool_choice none once the tool-call limit is reached', async () => {
    const recorder = new CallOptionsRecorder();
    const { model, graph } = build(
      getTemplate('chat_with_tools'),
      [{ content: '', toolCalls: [calc('1 + 1')] }, { content: '', toolCalls: [calc('2 + 2')] }, { content: 'From what I have: 2 and 4.' }],
      { toolCallLimit: 2 },
    );
    const result = await graph.invoke({ messages: [new HumanMessage('keep calculating')] }, { callbacks: [recorder] });
    expect(model.calls).toHaveLength(3);
    expect(result.toolCallCount).toBe(2);
    expect(result.messages.at(-1)?.content).toBe('From what I have: 2 and 4.');
    expect(recorder.options.map((options) => options.tool_choice)).toEqual([undefined, undefined, 'none']);
    const finalSystem = model.calls[2]?.messages[0];
    expect(finalSystem?.getType()).toBe('system');
    expect(finalSystem?.content).toBe(`${SYSTEM_PROMPT}\n\n${FINAL_ANSWER_INSTRUCTION}`);
    expect(model.calls[1]?.messages[0]?.content).toBe(SYSTEM_PROMPT);
  });

  it('answers calls past the limit with an error instead of running them', async () => {
    let runs = 0;
    const counter = tool(async () => String((runs += 1)), { name: 'counter', description: 'counts', schema: z.object({}) });
    const call = (id: string) => ({ name: 'counter', args: {}, id });
    const { model, graph } = build(
      toolsTemplateWith('counter'),
      [{ content: '', toolCalls: [call('a'), call('b')] }, { content: '', toolCalls: [call('c'), call('d')] }, { content: 'Counted.' }],
      { toolCallLimit: 3, extraTools: [counter] },
    );
    const result = await graph.invoke({ messages: [new HumanMessage('count')] });
    expect(runs).toBe(3);
    expect(result.toolCallCount).toBe(3);
    expect(toolMessages(result.messages).map((message) => [message.tool_call_id, message.status, message.content])).toEqual([
      ['a', 'success', '1'],
      ['b', 'success', '2'],
      ['c', 'success', '3'],
      ['d', 'error', 'Error: not run: this run reached its limit of 3 tool calls; answer with what you have'],
    ]);
    expect(model.calls).toHaveLength(3);
    expect(model.calls[2]?.messages[0]?.content).toContain(FINAL_ANSWER_INSTRUCTION);
  });

  it('drops tool calls the final answer makes despite being told not to', async () => {
    const { graph } = build(
      getTemplate('chat_with_tools'),
      [
        { content: '', toolCalls: [calc('1 + 1')] },
        { content: 'Partial answer: 2.', toolCalls: [calc('3 + 3')], usage: { input_tokens: 9, output_tokens: 4 } },
      ],
      { toolCallLimit: 1 },
    );
    const result = await graph.invoke({ messages: [new HumanMessage('go')] });
    const final = result.messages.at(-1);
    expect(final && AIMessage.isInstance(final) ? final.tool_calls : undefined).toEqual([]);
    expect(final?.content).toBe('Partial answer: 2.');
    expect(final && AIMessage.isInstance(final) ? final.usage_metadata?.total_tokens : undefined).toBe(13);
  });

  it('turns a throwing tool into an error tool message and carries on', async () => {
    const flaky = tool(
      async () => {
        throw new Error('weather backend unavailable');
      },
      { name: 'weather', description: 'weather', schema: z.object({ city: z.string() }) },
    );
    const { model, graph } = build(
      toolsTemplateWith('weather'),
      [{ content: '', toolCalls: [{ name: 'weather', args: { city: 'Paris' } }] }, { content: 'Sorry, I cannot check the weather now.' }],
      { extraTools: [flaky] },
    );
    const result = await graph.invoke({ messages: [new HumanMessage('weather in Paris?')] });
    const [failed] = toolMessages(result.messages);
    expect(failed?.status).toBe('error');
    expect(failed?.content).toBe('Error: weather backend unavailable');
    expect(failed?.name).toBe('weather');
    expect(toolMessages(model.calls[1]?.messages ?? [])).toEqual([failed]);
    expect(result.messages.at(-1)?.content).toBe('Sorry, I cannot check the weather now.');
    expect(result.toolCallCount).toBe(1);
  });

  it('answers bad expressions, unknown tools and bad arguments with error tool messages', async () => {
    const { graph } = build(getTemplate('chat_with_tools'), [
      {
        content: '',
        toolCalls: [
          calc('1 / 0', 'div'),
          { name: 'web_search', args: { q: 'x' }, id: 'unknown' },
          { name: 'calculator', args: { expr: '1' }, id: 'badargs' },
          { name: 'current_time', args: { timezone: 'Mars/Base' }, id: 'zone' },
        ],
      },
      { content: 'Done.' },
    ]);
    const result = await graph.invoke({ messages: [new HumanMessage('go')] });
    const messages = toolMessages(result.messages);
    expect(messages.map((message) => [message.tool_call_id, message.status])).toEqual([
      ['div', 'error'],
      ['unknown', 'error'],
      ['badargs', 'error'],
      ['zone', 'error'],
    ]);
    expect(messages[0]?.content).toBe('Error: division by zero at position 3');
    expect(messages[1]?.content).toBe('Error: unknown tool "web_search"; available tools: calculator, current_time');
    expect(messages[2]?.content).toMatch(/^Error: .*schema/);
    expect(messages[3]?.content).toMatch(/^Error: Unknown time zone "Mars\/Base"/);
    expect(result.messages.at(-1)?.content).toBe('Done.');
  });

  it('runs as many tool rounds as the limit allows, past LangGraph’s default recursion limit', async () => {
    const rounds = 15;
    const turns: ScriptedTurn[] = Array.from({ length: rounds }, (_, i) => ({ content: '', toolCalls: [calc(`${i} + 1`)] }));
    const { model, graph } = build(getTemplate('chat_with_tools'), [...turns, { content: 'All done.' }], { toolCallLimit: 20 });
    const result = await graph.invoke({ messages: [new HumanMessage('count to 15')] });
    expect(result.toolCallCount).toBe(rounds);
    expect(model.calls).toHaveLength(rounds + 1);
    expect(result.messages.at(-1)?.content).toBe('All done.');
  });
});

describe('createGraph', () => {
  const withTemperature = (): GraphDefinition => {
    const definition = getTemplate('chat');
    const modelNode = definition.nodes.find((node) => node.type === 'model');
    if (modelNode?.type !== 'model') throw new Error('chat has no model node');
    modelNode.config = { ...modelNode.config, temperature: 0.2, maxTokens: 100 };
    return definition;
  };

  it('applies temperature and maxTokens through configureModel', async () => {
    const base = new ScriptedChatModel({ turns: [] });
    const tuned = new ScriptedChatModel({ turns: [{ content: 'tuned reply' }] });
    const seen: unknown[] = [];
    const graph = createGraph(withTemperature(), {
      model: base,
      tools: createToolRegistry(),
      toolCallLimit: 3,
      configureModel: (model, settings) => {
        seen.push([model, settings]);
        return tuned;
      },
    });
    const result = await graph.invoke({ messages: [new HumanMessage('hi')] });
    expect(seen).toEqual([[base, { temperature: 0.2, maxTokens: 100 }]]);
    expect(result.messages.at(-1)?.content).toBe('tuned reply');
    expect(base.calls).toHaveLength(0);
  });

  it('lets invokeModel wrap every model call, e.g. to retry a failed one', async () => {
    const model = new ScriptedChatModel({
      turns: [{ content: '', toolCalls: [calc('1 + 1')] }, { error: { message: 'overloaded', status: 529 } }, { content: 'It is 2.' }],
    });
    const attempts: string[] = [];
    const graph = createGraph(getTemplate('chat_with_tools'), {
      model,
      tools: createToolRegistry(),
      toolCallLimit: 3,
      invokeModel: async (runnable, messages, config) => {
        for (;;) {
          try {
            const reply = await runnable.invoke(messages, config);
            attempts.push('ok');
            return reply;
          } catch (error) {
            attempts.push((error as Error).message);
          }
        }
      },
    });
    const result = await graph.invoke({ messages: [new HumanMessage('1 + 1?')] });
    expect(attempts).toEqual(['ok', '529 overloaded', 'ok']);
    expect(result.messages.at(-1)?.content).toBe('It is 2.');
    expect(model.calls).toHaveLength(3);
  });

  it('refuses model settings it has no way to apply', () => {
    const model = new ScriptedChatModel({ turns: [] });
    expect(() => createGraph(withTemperature(), { model, tools: createToolRegistry(), toolCallLimit: 3 })).toThrow(GraphBuildError);
  });

  it('validates the definition against its own tool registry', () => {
    const model = new ScriptedChatModel({ turns: [] });
    expect(() => createGraph(toolsTemplateWith('weather'), { model, tools: createToolRegistry(), toolCallLimit: 3 })).toThrow(
      'unknown tool "weather"',
    );
  });
});
