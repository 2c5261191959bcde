import { describe, expect, it } from 'vitest';
import { GraphDefinitionError, validateGraphDefinition } from '../../src/graphs/definition.js';
import { UnknownTemplateError, getTemplate, listTemplates } from '../../src/graphs/templates.js';

/** A valid tool loop to break one way per test. */
function toolLoop(): Record<string, unknown> & { nodes: Record<string, unknown>[]; edges: Record<string, unknown>[] } {
  return {
    name: 'loop',
    nodes: [
      { id: 'memory', type: 'memory', config: { window: 10 } },
      { id: 'model', type: 'model', config: { systemPrompt: 'Be brief.' } },
      { id: 'tools', type: 'tools', config: { tools: ['calculator'] } },
    ],
    edges: [
      { from: 'memory', to: 'model' },
      { from: 'model', to: 'tools', condition: 'has_tool_calls' },
      { from: 'model', to: '__end__', condition: 'no_tool_calls' },
      { from: 'tools', to: 'model' },
    ],
    entry: 'memory',
  };
}

function problemsOf(json: unknown, toolNames?: string[]): readonly string[] {
  try {
    validateGraphDefinition(json, toolNames ? { toolNames } : {});
  } catch (error) {
    if (error instanceof GraphDefinitionError) return error.problems;
    throw error;
  }
  throw new Error('expected the definition to be invalid');
}

describe('validateGraphDefinition', () => {
  it('returns a valid definition typed and unchanged', () => {
    const json = toolLoop();
    expect(validateGraphDefinition(json)).toEqual(json);
  });

  it('lists every problem in the error message', () => {
    const json = toolLoop();
    json.nodes.push({ id: 'model', type: 'model' });
    json.edges.push({ from: 'model', to: 'nowhere' });
    let caught: unknown;
    try {
      validateGraphDefinition(json);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GraphDefinitionError);
    const error = caught as GraphDefinitionError;
    expect(error.graphName).toBe('loop');
    expect(error.message).toMatch(/^Invalid graph definition "loop": 2 problems\n {2}- /);
    expect(error.message).toContain('duplicate node id "model"');
    expect(error.message).toContain('unknown target node "nowhere"');
  });

  it('reports an unknown node type with the types it accepts', () => {
    const json = toolLoop();
    json.nodes.push({ id: 'search', type: 'retriever' });
    const [problem] = problemsOf(json);
    expect(problem).toMatch(/^nodes\[3\]\.type: Invalid option: expected one of "model"\|"tools"\|"conditional"\|"memory"/);
  });

  it('reports missing fields, unknown keys and bad ids by path', () => {
    expect(problemsOf({ nodes: [], edges: [] })).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name: /),
        expect.stringMatching(/^nodes: a graph needs at least one node/),
        expect.stringMatching(/^entry: /),
      ]),
    );
    const json = toolLoop();
    json.extra = true;
    json.nodes[0] = { id: '1st memory', type: 'memory', config: { window: 10 } };
    expect(problemsOf(json)).toEqual([
      expect.stringMatching(/^nodes\[0\]\.id: must start with a letter/),
      expect.stringMatching(/^Unrecognized key: "extra"/),
    ]);
    expect(problemsOf('not an object')).toEqual([expect.stringMatching(/expected object/)]);
  });

  it('refuses duplicate and reserved node ids', () => {
    const json = toolLoop();
    json.nodes.push({ id: 'tools', type: 'tools', config: { tools: ['current_time'] } });
    json.nodes.push({ id: 'messages', type: 'conditional' });
    const problems = problemsOf(json);
    expect(problems).toContain('nodes[3] ("tools"): duplicate node id "tools"');
    expect(problems).toContain('nodes[4] ("messages"): the id "messages" is reserved');
  });

  it('checks each node type’s config', () => {
    const json = toolLoop();
    json.nodes[0] = { id: 'memory', type: 'memory', config: { window: 0 } };
    json.nodes[1] = { id: 'model', type: 'model', config: { systemPrompt: 'x', temprature: 0.2 } };
    json.nodes[2] = { id: 'tools', type: 'tools' };
    expect(problemsOf(json)).toEqual([
      expect.stringMatching(/^nodes\[0\] \("memory"\)\.config\.window: Too small: expected number to be >0/),
      'nodes[1] ("model").config: Unrecognized key: "temprature"',
      expect.stringMatching(/^nodes\[2\] \("tools"\)\.config: Invalid input: expected object, received undefined/),
    ]);
  });

  it('refuses a tools node naming an unknown tool', () => {
    const json = toolLoop();
    json.nodes[2] = { id: 'tools', type: 'tools', config: { tools: ['calculator', 'web_search', 'calculator'] } };
    expect(problemsOf(json)).toEqual([
      'nodes[2] ("tools"): unknown tool "web_search" (known tools: calculator, current_time)',
      'nodes[2] ("tools"): tool listed twice: calculator',
    ]);
  });

  it('checks tools against the registry it is given', () => {
    const json = toolLoop();
    json.nodes[2] = { id: 'tools', type: 'tools', config: { tools: ['web_search'] } };
    expect(() => validateGraphDefinition(json, { toolNames: ['web_search'] })).not.toThrow();
    expect(problemsOf(json, ['calculator'])).toEqual(['nodes[2] ("tools"): unknown tool "web_search" (known tools: calculator)']);
  });

  it('refuses edges to or from unknown nodes, and misuse of start and end', () => {
    const json = toolLoop();
    json.edges.push({ from: 'ghost', to: 'model' }, { from: '__start__', to: 'memory' }, { from: '__end__', to: 'model' });
    json.edges.push({ from: 'tools', to: '__start__' });
    const problems = problemsOf(json);
    expect(problems).toContain('edges[4] (ghost → model): unknown source node "ghost"');
    expect(problems).toContain('edges[5] (__start__ → memory): edges may not leave __start__; set "entry" to the first node instead');
    expect(problems).toContain('edges[6] (__end__ → model): edges may not leave __end__');
    expect(problems).toContain('edges[7] (tools → __start__): edges may not lead to __start__; lead to the entry node instead');
  });

  it('refuses an unknown entry node', () => {
    expect(problemsOf({ ...toolLoop(), entry: 'start' })).toContain('entry: unknown node "start"');
    expect(problemsOf({ ...toolLoop(), entry: '__end__' })).toContain('entry: must be a node id, not "__end__"');
  });

  it('refuses an unknown condition and shows the syntax', () => {
    const json = toolLoop();
    json.edges[1] = { from: 'model', to: 'tools', condition: 'wants_tools' };
    expect(problemsOf(json)).toEqual([
      expect.stringMatching(/^edges\[1\] \(model → tools\): unknown condition "wants_tools": expected "always", "has_tool_calls"/),
    ]);
  });

  it('refuses conditional edges that leave a branch uncovered', () => {
    const json = toolLoop();
    json.edges.splice(2, 1); // drop model → __end__ on no_tool_calls
    expect(problemsOf(json)).toEqual([
      'node "model": no edge applies when the last message has no tool calls and tool_calls = 0; ' +
        'its conditional edges must cover every case (add the missing branch or a final "always" edge)',
    ]);
  });

  it('refuses tool-call bounds that leave a count uncovered', () => {
    const json = toolLoop();
    json.edges[3] = { from: 'tools', to: 'model', condition: 'tool_calls < 3' };
    json.edges.push({ from: 'tools', to: '__end__', condition: 'tool_calls >= 4' });
    expect(problemsOf(json)).toEqual([expect.stringMatching(/^node "tools": no edge applies when .* and tool_calls = 3;/)]);
  });

  it('refuses a numeric bound that leaves some limits uncovered', () => {
    const json = toolLoop();
    json.edges[3] = { from: 'tools', to: 'model', condition: 'tool_calls < limit' };
    json.edges.push({ from: 'tools', to: '__end__', condition: 'tool_calls >= 5' });
    expect(problemsOf(json)).toEqual([expect.stringMatching(/^node "tools": no edge applies when .* with limit = /)]);
  });

  it('refuses an edge that is never taken', () => {
    const json = toolLoop();
    json.edges[1] = { from: 'model', to: 'tools', condition: 'always' };
    expect(problemsOf(json)).toContain(
      'edges[2] (model → __end__): is never taken: an earlier edge from "model" always applies first or its condition can never hold',
    );
    const contradictory = toolLoop();
    contradictory.edges.splice(1, 0, { from: 'model', to: '__end__', condition: 'has_tool_calls && no_tool_calls' });
    expect(problemsOf(contradictory)).toEqual([expect.stringMatching(/^edges\[1\] \(model → __end__\): is never taken/)]);
  });

  it('refuses a node with no outgoing edge', () => {
    const json = toolLoop();
    json.edges.pop();
    expect(problemsOf(json)).toContain('node "tools": has no outgoing edge; add one to another node or to __end__');
  });

  it('refuses a model that would leave its tool calls unanswered', () => {
    const json = toolLoop();
    json.edges[1] = { from: 'model', to: '__end__', condition: 'has_tool_calls' };
    json.edges[3] = { from: 'tools', to: '__end__' };
    expect(problemsOf(json)).toContain(
      'node "model": when the model asks for tools (the last message has tool calls and tool_calls = 0) it routes to ' +
        '"__end__", leaving the tool calls unanswered; route that case to a tools node',
    );
  });

  it('refuses unreachable nodes', () => {
    const json = toolLoop();
    json.nodes.push({ id: 'orphan', type: 'memory', config: { window: 1 } });
    json.edges.push({ from: 'orphan', to: '__end__' });
    expect(problemsOf(json)).toEqual(['node "orphan": is unreachable from the entry node "memory"']);
  });

  it('refuses nodes with no path to the end', () => {
    const json = toolLoop();
    json.edges[2] = { from: 'model', to: 'tools', condition: 'no_tool_calls' };
    expect(problemsOf(json)).toEqual([
      'node "memory": has no path to __end__, so a run through it could never finish',
      'node "model": has no path to __end__, so a run through it could never finish',
      'node "tools": has no path to __end__, so a run through it could never finish',
    ]);
  });

  it('refuses a loop that passes no tools node', () => {
    const json = toolLoop();
    json.nodes.push({ id: 'router', type: 'conditional' });
    json.edges[2] = { from: 'model', to: 'router', condition: 'no_tool_calls' };
    json.edges.push({ from: 'router', to: 'model', condition: 'tool_calls < 2' });
    json.edges.push({ from: 'router', to: '__end__', condition: 'tool_calls >= 2' });
    expect(problemsOf(json)).toEqual(['nodes model → router → model: form a loop with no tools node, which could never end']);
  });
});

describe('templates', () => {
  it.each(listTemplates().map((template) => [template.name, template]))('validates the %s template', (_name, template) => {
    expect(validateGraphDefinition(template)).toEqual(template);
  });

  it('lists chat and chat_with_tools', () => {
    expect(listTemplates().map((template) => template.name)).toEqual(['chat', 'chat_with_tools']);
  });

  it('hands out copies that callers may change', () => {
    const first = getTemplate('chat');
    first.nodes.length = 0;
    expect(getTemplate('chat').nodes).toHaveLength(2);
  });

  it.each(['chatty', 'toString', '__proto__'])('throws UnknownTemplateError for %j', (name) => {
    expect(() => getTemplate(name)).toThrow(UnknownTemplateError);
    expect(() => getTemplate(name)).toThrow(`Unknown graph template ${JSON.stringify(name)}; templates: chat, chat_with_tools`);
  });
});
