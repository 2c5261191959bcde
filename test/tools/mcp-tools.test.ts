import { describe, expect, it } from 'vitest';
import { exposedToolName, resultText } from '../../src/tools/mcp-tools.js';

describe('exposedToolName', () => {
  it('is <server>__<tool> when that is a valid provider tool name', () => {
    expect(exposedToolName('local', 'echo')).toBe('local__echo');
    expect(exposedToolName('my-server', 'get_weather')).toBe('my-server__get_weather');
  });

  it('stays within the providers\u2019 rule (64 of [A-Za-z0-9_-]) and apart for names that would clash', () => {
    const names = [
      exposedToolName('docs.v2', 'search'),
      exposedToolName('docs_v2', 'search'),
      exposedToolName('a__b', 'c'),
      exposedToolName('a', 'b__c'),
      exposedToolName('s', 'x'.repeat(100)),
      exposedToolName('s', `${'x'.repeat(100)}y`),
      exposedToolName('s', 'tool.with.dots'),
    ];
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(new Set(names).size).toBe(names.length);
    expect(exposedToolName('docs.v2', 'search')).toBe(exposedToolName('docs.v2', 'search'));
  });
});

describe('resultText', () => {
  it('joins text parts, names binary parts and falls back to structured content', () => {
    expect(
      resultText({
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      }),
    ).toBe('a\nb');
    expect(resultText({ content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }] })).toBe('[image image/png]');
    expect(resultText({ content: [], structuredContent: { temperature: 21 } })).toBe('{"temperature":21}');
  });
});
