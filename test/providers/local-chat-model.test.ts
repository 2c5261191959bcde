import fc from 'fast-check';
import { tool } from '@langchain/core/tools';
import { AIMessage, type AIMessageChunk, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LocalChatModel } from '../../src/providers/local-chat-model.js';
import { normalizeUsage } from '../../src/providers/usage.js';

// The reference count is js-tiktoken itself, with the same bundled ranks.
const reference = new Tiktoken(o200kBase);
const tokens = (text: string): number => reference.encode(text).length;

const calculator = tool(async ({ expression }: { expression: string }) => String(expression), {
  name: 'calculator',
  description: 'Evaluates an arithmetic expression',
  schema: z.object({ expression: z.string() }),
});
const currentTime = tool(async () => '2026-01-01T12:00:00Z', {
  name: 'current_time',
  description: 'Returns the current time',
  schema: z.object({}),
});

async function collect(stream: AsyncIterable<AIMessageChunk>): Promise<{ chunks: number; message: AIMessageChunk }> {
  let message: AIMessageChunk | undefined;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    message = message === undefined ? chunk : message.concat(chunk);
  }
  if (message === undefined) throw new Error('empty stream');
  return { chunks, message };
}

describe('LocalChatModel', () => {
  it('answers the same conversation with the same reply', async () => {
    const model = new LocalChatModel();
    const conversation = [new SystemMessage('You are helpful.'), new HumanMessage('Tell me about otters.')];
    const first = await model.invoke(conversation);
    const second = await new LocalChatModel().invoke(conversation);
    expect(first.content).toBe(second.content);
    expect(first.content).toContain('Tell me about otters.');
    expect(first.response_metadata).toMatchObject({ model_name: 'local-echo-1', finish_reason: 'stop' });
  });

  it('streams the reply in several chunks that add up to the invoke reply', async () => {
    const model = new LocalChatModel({ latencyMs: 0 });
    const invoked = await model.invoke('Hello there, local model!');
    const { chunks, message } = await collect(await model.stream('Hello there, local model!'));
    expect(chunks).toBeGreaterThan(5);
    expect(message.content).toBe(invoked.content);
  });

  it('reports usage equal to js-tiktoken counts of the prompt and the reply', async () => {
    const model = new LocalChatModel();
    const conversation = [new SystemMessage('Be brief.'), new HumanMessage('How are you today?')];
    const reply = await model.invoke(conversation);
    const prompt = tokens('Be brief.') + tokens('How are you today?');
    const completion = tokens(String(reply.content));
    expect(reply.usage_metadata).toEqual({ input_tokens: prompt, output_tokens: completion, total_tokens: prompt + completion });
    expect(normalizeUsage(reply.usage_metadata)).toEqual({
      inputUncached: prompt,
      cacheRead: 0,
      cacheWrite: 0,
      output: completion,
      reasoning: 0,
    });
  });

  it('reports the same usage streaming as invoking', async () => {
    const model = new LocalChatModel();
    const invoked = await model.invoke('Count my tokens, please.');
    const { message } = await collect(await model.stream('Count my tokens, please.'));
    expect(normalizeUsage(message.usage_metadata)).toEqual(normalizeUsage(invoked.usage_metadata));
    expect(message.usage_metadata).toMatchObject(invoked.usage_metadata!);
  });

  it('calls the calculator for arithmetic when it is bound', async () => {
    const model = new LocalChatModel().bindTools([calculator, currentTime]);
    const reply = await model.invoke('what is 12*(3+4)?');
    expect(reply.tool_calls).toEqual([expect.objectContaining({ name: 'calculator', args: { expression: '12*(3+4)' } })]);
    expect(reply.response_metadata.finish_reason).toBe('tool_calls');
    const { message } = await collect(await model.stream('what is 12*(3+4)?'));
    expect(message.tool_calls).toEqual(reply.tool_calls);
    // A tool call is output too: its name and JSON arguments are counted.
    expect(reply.usage_metadata?.output_tokens).toBe(tokens('calculator') + tokens('{"expression":"12*(3+4)"}'));
  });

  it('does not call tools that are not bound, and works the arithmetic out itself', async () => {
    const reply = await new LocalChatModel().invoke('what is 12*(3+4)?');
    expect(reply.tool_calls ?? []).toEqual([]);
    expect(reply.content).toBe('12*(3+4) = 84.');
  });

  it.each([
    ['2 + 2', '2 + 2 = 4.'],
    ['How much is -3.5 * 2, roughly?', '-3.5 * 2 = -7.'],
    ['(1 + 2) × 3 ÷ 4', '(1 + 2) * 3 / 4 = 2.25.'],
    ['0.1 + 0.2', '0.1 + 0.2 = 0.3.'],
    ['2^10 bytes', '2^10 = 1024.'],
    ['what is 1/0?', "I can't work out 1/0: division by zero at position 2."],
  ])('answers arithmetic without tools with the calculator evaluator: %s', async (question, answer) => {
    const reply = await new LocalChatModel().invoke(question);
    expect(reply.content).toBe(answer);
  });

  it('says what it does when there is no arithmetic, without promising the time', async () => {
    const reply = await new LocalChatModel().invoke('What time is it?');
    expect(reply.content).toBe(
      'You said: "What time is it?". I\'m the local model: I echo messages, work out arithmetic, and tell the time when the current_time tool is available.',
    );
  });

  it('finds arithmetic in very long messages', async () => {
    const model = new LocalChatModel().bindTools([calculator]);
    const expression = async (text: string): Promise<unknown> => (await model.invoke(text)).tool_calls?.[0]?.args.expression;
    const digits = '7'.repeat(20_000);
    expect(await expression(digits)).toBeUndefined();
    expect(await expression(`${digits}+1`)).toBe(`${digits}+1`);
    expect(await expression(`${'('.repeat(50_000)}1+1`)).toBe('1+1');
    expect(await expression(`1+1${')'.repeat(50_000)}`)).toBe('1+1');
    expect(await expression(`1${' '.repeat(50_000)}x 2 * 3`)).toBe('2 * 3');
    expect(await expression(`${'1 + '.repeat(10_000)}`)).toBe(`${'1 + '.repeat(9_999)}1`);
    expect(await expression('-'.repeat(50_000))).toBeUndefined();
    // Too long for the calculator: the plain model says so instead of computing it.
    const reply = await new LocalChatModel().invoke(`${digits}+1`);
    expect(reply.content).toMatch(/^I can't work out 7{199}…: expression is 20002 characters long; the limit is 1000\.$/);
  });

  it('calls the calculator only with an expression taken from the message', () => {
    const model = new LocalChatModel().bindTools([calculator]);
    const text = fc
      .array(fc.oneof(fc.constantFrom(...'0123456789+-*/^%×÷(). x='.split('')), fc.constantFrom('12', '3.5', '2025-06-10', ' ')), {
        maxLength: 400,
      })
      .chain((parts) => fc.integer({ min: 1, max: 200 }).map((times) => parts.join('').repeat(times)));
    return fc.assert(
      fc.asyncProperty(text, async (message) => {
        const reply = await model.invoke(message);
        const call = reply.tool_calls?.[0];
        if (call === undefined) {
          expect(reply.content).not.toBe('');
          return;
        }
        const expression = String(call.args.expression);
        expect(message.replaceAll('×', '*').replaceAll('÷', '/')).toContain(expression);
        expect(expression).toMatch(/\d[\s()]*[-+*/^%][\s()-]*\d/);
        expect(expression).toBe(expression.trim());
      }),
      { numRuns: 60 },
    );
  });

  it('calls current_time when asked for the time and it is bound', async () => {
    const reply = await new LocalChatModel().bindTools([calculator, currentTime]).invoke('What time is it?');
    expect(reply.tool_calls).toEqual([expect.objectContaining({ name: 'current_time', args: {} })]);
  });

  it('answers from tool results', async () => {
    const model = new LocalChatModel().bindTools([calculator]);
    const call = { name: 'calculator', args: { expression: '12*(3+4)' }, id: 'call_1', type: 'tool_call' as const };
    const reply = await model.invoke([
      new HumanMessage('what is 12*(3+4)?'),
      new AIMessage({ content: '', tool_calls: [call] }),
      new ToolMessage({ content: '84', tool_call_id: 'call_1', name: 'calculator' }),
    ]);
    expect(reply.tool_calls ?? []).toEqual([]);
    expect(reply.content).toBe('12*(3+4) = 84.');
    // The earlier tool call counts as prompt.
    const prompt = tokens('what is 12*(3+4)?') + tokens('calculator') + tokens('{"expression":"12*(3+4)"}') + tokens('84');
    expect(reply.usage_metadata?.input_tokens).toBe(prompt);
  });

  it('answers from a current_time result', async () => {
    const call = { name: 'current_time', args: {}, id: 'call_t', type: 'tool_call' as const };
    const time = JSON.stringify({ utc: '2026-01-01T12:00:00Z', timezone: 'UTC', local: '2026-01-01 12:00:00', weekday: 'Thursday' });
    const reply = await new LocalChatModel()
      .bindTools([currentTime])
      .invoke([
        new HumanMessage('What time is it?'),
        new AIMessage({ content: '', tool_calls: [call] }),
        new ToolMessage({ content: time, tool_call_id: 'call_t', name: 'current_time' }),
      ]);
    expect(reply.content).toBe('The current time is Thursday, 2026-01-01 12:00:00 (UTC).');
  });

  it('does not take a date for a subtraction', async () => {
    const reply = await new LocalChatModel().bindTools([calculator]).invoke('What happened on 2025-06-10?');
    expect(reply.tool_calls ?? []).toEqual([]);
  });

  it('waits latencyMs before each chunk and stops promptly when aborted', async () => {
    const model = new LocalChatModel({ latencyMs: 40 });
    const started = performance.now();
    const { chunks } = await collect(await model.stream('hi'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(40 * (chunks - 1) - 5);

    const slow = new LocalChatModel({ latencyMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const abortedAt = performance.now();
    await expect(slow.invoke('hi', { signal: controller.signal })).rejects.toThrow();
    expect(performance.now() - abortedAt).toBeLessThan(1_000);
  });
});
