import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { HumanMessage } from '@langchain/core/messages';
import type { StreamEvent } from '@langchain/core/tracers/log_stream';
import { tool } from '@langchain/core/tools';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createGraph } from '../../src/graphs/build-graph.js';
import { getTemplate } from '../../src/graphs/templates.js';
import { ScriptedChatModel, type ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { createToolRegistry } from '../../src/tools/tool-registry.js';

const calc = (expression: string) => ({ name: 'calculator', args: { expression } });

function toolsGraph(turns: ScriptedTurn[], extraTools: Parameters<typeof createToolRegistry>[0] = {}) {
  const definition = getTemplate('chat_with_tools');
  const toolsNode = definition.nodes.find((node) => node.type === 'tools');
  if (toolsNode?.type !== 'tools') throw new Error('chat_with_tools has no tools node');
  toolsNode.config.tools.push(...(extraTools.extraTools ?? []).map((extra) => extra.name));
  const model = new ScriptedChatModel({ turns });
  return { model, graph: createGraph(definition, { model, tools: createToolRegistry(extraTools), toolCallLimit: 5 }) };
}

/** Records the errors model calls end with (a callback, as the runtime's would). */
class ModelErrorRecorder extends BaseCallbackHandler {
  name = 'model-error-recorder';
  readonly names: string[] = [];
  override async handleLLMError(error: unknown): Promise<void> {
    this.names.push(error instanceof Error ? error.name : String(error));
  }
}

async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe('streamEvents v2 on a compiled graph', () => {
  it('reports every model call with its usage and every tool call', async () => {
    const { graph } = toolsGraph([
      { content: 'Let me compute.', toolCalls: [calc('6 * 7')], usage: { input_tokens: 100, output_tokens: 12 } },
      {
        content: '',
        toolCalls: [calc('42 + 1')],
        usage: { input_tokens: 140, output_tokens: 9, input_token_details: { cache_read: 100 } },
      },
      { content: 'It is 43.', usage: { input_tokens: 160, output_tokens: 5, output_token_details: { reasoning: 2 } } },
    ]);
    const events = await collect(graph.streamEvents({ messages: [new HumanMessage('6*7+1?')] }, { version: 'v2' }));

    const modelEnds = events.filter((event) => event.event === 'on_chat_model_end');
    expect(modelEnds.map((event) => event.data.output.usage_metadata)).toEqual([
      expect.objectContaining({ input_tokens: 100, output_tokens: 12, total_tokens: 112 }),
      expect.objectContaining({ input_tokens: 140, output_tokens: 9, total_tokens: 149, input_token_details: { cache_read: 100 } }),
      expect.objectContaining({ input_tokens: 160, output_tokens: 5, total_tokens: 165, output_token_details: { reasoning: 2 } }),
    ]);
    expect(modelEnds.map((event) => event.data.output.response_metadata.finish_reason)).toEqual(['tool_calls', 'tool_calls', 'stop']);
    expect(modelEnds.map((event) => event.metadata.langgraph_node)).toEqual(['model', 'model', 'model']);
    expect(modelEnds.map((event) => event.metadata.ls_model_name)).toEqual(['scripted-1', 'scripted-1', 'scripted-1']);
    expect(events.filter((event) => event.event === 'on_chat_model_start')).toHaveLength(3);
    const streamed = events.filter((event) => event.event === 'on_chat_model_stream').map((event) => event.data.chunk.content);
    expect(streamed.join('')).toBe('Let me compute.It is 43.');

    const toolEvents = events
      .filter((event) => event.event.startsWith('on_tool_'))
      .map((event) => [event.event, event.name, event.event === 'on_tool_end' ? event.data.output.content : event.data.input]);
    expect(toolEvents).toEqual([
      ['on_tool_start', 'calculator', { expression: '6 * 7' }],
      ['on_tool_end', 'calculator', '42'],
      ['on_tool_start', 'calculator', { expression: '42 + 1' }],
      ['on_tool_end', 'calculator', '43'],
    ]);
  });

  it('reports a model call without usage as having none', async () => {
    const { graph } = toolsGraph([{ content: 'Hi.', usage: null }]);
    const events = await collect(graph.streamEvents({ messages: [new HumanMessage('hi')] }, { version: 'v2' }));
    const [end] = events.filter((event) => event.event === 'on_chat_model_end');
    expect(end?.data.output.usage_metadata).toBeUndefined();
  });

  it('reports a failing tool as a tool start and a tool error', async () => {
    const { graph } = toolsGraph([{ content: '', toolCalls: [calc('1 / 0')] }, { content: 'Cannot divide by zero.' }]);
    const events = await collect(graph.streamEvents({ messages: [new HumanMessage('1/0?')] }, { version: 'v2' }));
    expect(events.filter((event) => event.event.startsWith('on_tool_')).map((event) => [event.event, event.name])).toEqual([
      ['on_tool_start', 'calculator'],
      ['on_tool_error', 'calculator'],
    ]);
    expect(events.filter((event) => event.event === 'on_chat_model_end')).toHaveLength(2);
  });
});

describe('aborting a run through its signal', () => {
  it('stops a slow model call promptly, cancelling the call itself', async () => {
    const { model, graph } = toolsGraph([{ content: 'too late', latencyMs: 10_000 }]);
    const modelErrors = new ModelErrorRecorder();
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(new Error('user cancelled')), 50);
    await expect(
      graph.invoke({ messages: [new HumanMessage('hi')] }, { signal: controller.signal, callbacks: [modelErrors] }),
    ).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(model.calls).toHaveLength(1);
    // The model call saw the signal and ended, rather than running on unobserved.
    await expect.poll(() => modelErrors.names, { timeout: 500 }).toEqual(['AbortError']);
  });

  it('stops the stream of events promptly', async () => {
    const { graph } = toolsGraph([{ content: 'one two three four five six', chunkDelayMs: 2_000 }]);
    const controller = new AbortController();
    const started = performance.now();
    const events: string[] = [];
    const consume = async (): Promise<void> => {
      for await (const event of graph.streamEvents({ messages: [new HumanMessage('hi')] }, { version: 'v2', signal: controller.signal })) {
        events.push(event.event);
        if (event.event === 'on_chat_model_stream') controller.abort();
      }
    };
    await expect(consume()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(events).not.toContain('on_chat_model_end');
  });

  it('stops during a slow tool and calls the model no more', async () => {
    const slow = tool(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        return 'late';
      },
      { name: 'slow_lookup', description: 'slow', schema: z.object({}) },
    );
    const { model, graph } = toolsGraph([{ content: '', toolCalls: [{ name: 'slow_lookup', args: {} }] }, { content: 'never' }], {
      extraTools: [slow],
    });
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 100);
    await expect(graph.invoke({ messages: [new HumanMessage('look up')] }, { signal: controller.signal })).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(model.calls).toHaveLength(1);
  });
});
