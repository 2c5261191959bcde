import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { AIMessage, type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ModelNodeConfig } from '../../src/graphs/definition.js';
import { bindNodeModel, createModelNodeWith } from '../../src/graphs/model-node.js';
import { createToolsNode } from '../../src/graphs/tools-node.js';
import { ScriptedChatModel } from '../helpers/scripted-chat-model.js';
import { createToolRegistry } from '../../src/tools/tool-registry.js';

/** Records what callbacks see: the proof that a node hands its RunnableConfig on. */
class Recorder extends BaseCallbackHandler {
  name = 'recorder';
  readonly seen: string[] = [];
  readonly modelOptions: Record<string, unknown>[] = [];
  override async handleChatModelStart(
    _llm: unknown,
    _messages: unknown,
    _runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
  ): Promise<void> {
    this.seen.push('model start');
    this.modelOptions.push((extraParams?.options ?? {}) as Record<string, unknown>);
  }
  override async handleToolStart(
    tool: { id?: string[] },
    _input: string,
    _runId: string,
    _parentRunId?: string,
    _tags?: string[],
    _metadata?: unknown,
    runName?: string,
  ): Promise<void> {
    this.seen.push(`tool start ${runName ?? ''}`);
  }
}

const tools = createToolRegistry().list();
/** A model node for one model, bound as build-graph binds it. */
const modelNode = (model: ScriptedChatModel, config: ModelNodeConfig) => {
  const call = bindNodeModel(model, tools, config);
  return createModelNodeWith(config, () => call);
};
const state = (messages: ConstructorParameters<typeof HumanMessage>[0][] = ['hi']) => ({
  messages: messages.map((content) => new HumanMessage(content)),
  toolCallCount: 0,
});

describe('a model node', () => {
  it('hands its RunnableConfig to the model call', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'ok' }] });
    const recorder = new Recorder();
    await modelNode(model, {})(state(), { callbacks: [recorder] });
    expect(recorder.seen).toEqual(['model start']);
  });

  it('binds the tools, with tool_choice none, or not at all', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: '1' }, { content: '2' }, { content: '3' }] });
    const recorder = new Recorder();
    for (const mode of ['auto', 'none', 'omit'] as const) {
      await modelNode(model, { tools: mode })(state(), { callbacks: [recorder] });
    }
    expect(model.calls.map((call) => call.tools)).toEqual([['calculator', 'current_time'], ['calculator', 'current_time'], []]);
    expect(recorder.modelOptions.map((options) => options.tool_choice)).toEqual([undefined, 'none', undefined]);
  });

  it('appends the reply to the state', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'hello', toolCalls: [{ name: 'calculator', args: { expression: '1' } }] }] });
    const update = await modelNode(model, {})(state());
    const [reply] = update.messages as AIMessage[];
    expect(reply?.content).toBe('hello');
    expect(reply?.tool_calls?.map((call) => call.name)).toEqual(['calculator']);
  });
});

describe('createToolsNode', () => {
  const asking = (...calls: { name: string; args: Record<string, unknown>; id: string }[]) => ({
    messages: [new HumanMessage('go'), new AIMessage({ content: '', tool_calls: calls })] as BaseMessage[],
    toolCallCount: 0,
  });

  it('hands its RunnableConfig to each tool call', async () => {
    const recorder = new Recorder();
    const node = createToolsNode({ tools, toolCallLimit: 5 });
    const update = await node(asking({ name: 'calculator', args: { expression: '2 * 21' }, id: 'c1' }), { callbacks: [recorder] });
    expect(recorder.seen).toEqual(['tool start calculator']);
    expect((update.messages as ToolMessage[]).map((message) => message.content)).toEqual(['42']);
    expect(update.toolCallCount).toBe(1);
  });

  it('runs only the calls no tool message answers yet', async () => {
    const node = createToolsNode({ tools, toolCallLimit: 5 });
    const input = asking(
      { name: 'calculator', args: { expression: '1' }, id: 'done' },
      { name: 'calculator', args: { expression: '2' }, id: 'todo' },
    );
    input.messages.push(new ToolMessage({ content: '1', tool_call_id: 'done' }));
    const update = await node(input);
    expect((update.messages as ToolMessage[]).map((message) => message.tool_call_id)).toEqual(['todo']);
  });

  it('does nothing when the last AI message asks for no tools', async () => {
    const node = createToolsNode({ tools, toolCallLimit: 5 });
    expect(await node({ messages: [new HumanMessage('hi'), new AIMessage('hello')], toolCallCount: 2 })).toEqual({});
  });

  it('lets an abort stop the run instead of becoming a tool message', async () => {
    const waits = tool(
      async (_input, config) =>
        new Promise<string>((_resolve, reject) => {
          config.signal?.addEventListener('abort', () => reject(new Error('lookup cancelled')), { once: true });
        }),
      { name: 'waits', description: 'waits for the abort', schema: z.object({}) },
    );
    const node = createToolsNode({ tools: [waits], toolCallLimit: 5 });
    const controller = new AbortController();
    const pending = node(asking({ name: 'waits', args: {}, id: 'w' }), { signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toThrow();
  });
});
