import { tool } from '@langchain/core/tools';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BUILTIN_TOOL_NAMES, UnknownToolError, createToolRegistry } from '../../src/tools/tool-registry.js';

describe('createToolRegistry', () => {
  it('holds the built-in tools', () => {
    const registry = createToolRegistry();
    expect(registry.list().map((t) => t.name)).toEqual([...BUILTIN_TOOL_NAMES]);
    expect(registry.get('calculator').name).toBe('calculator');
    expect(registry.has('current_time')).toBe(true);
  });

  it('gives current_time the injected clock', async () => {
    const registry = createToolRegistry({ now: () => new Date('2030-05-06T07:08:09.000Z') });
    const result = JSON.parse(String(await registry.get('current_time').invoke({})));
    expect(result.utc).toBe('2030-05-06T07:08:09.000Z');
  });

  it('picks tools in the order asked', () => {
    const registry = createToolRegistry();
    expect(registry.pick(['current_time', 'calculator']).map((t) => t.name)).toEqual(['current_time', 'calculator']);
  });

  it('throws UnknownToolError naming the unknown tool', () => {
    const registry = createToolRegistry();
    expect(() => registry.get('web_search')).toThrow(UnknownToolError);
    expect(() => registry.pick(['calculator', 'web_search'])).toThrow('Unknown tool "web_search"; known tools: calculator, current_time');
    try {
      registry.get('web_search');
    } catch (error) {
      expect((error as UnknownToolError).toolName).toBe('web_search');
    }
  });

  it('registers extra tools beside the built-ins and refuses duplicate names', () => {
    const echo = tool(async ({ text }) => text, { name: 'echo', description: 'echo', schema: z.object({ text: z.string() }) });
    expect(createToolRegistry({ extraTools: [echo] }).names()).toEqual(['calculator', 'current_time', 'echo']);
    const clash = tool(async () => '', { name: 'calculator', description: 'x', schema: z.object({}) });
    expect(() => createToolRegistry({ extraTools: [clash] })).toThrow('Duplicate tool name "calculator"');
  });
});
