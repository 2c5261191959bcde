import { describe, expect, it } from 'vitest';
import { validateGraphDefinition } from '../../src/graphs/definition.js';
import { listTemplates } from '../../src/graphs/templates.js';
import {
  CUSTOM_WORKFLOW,
  toBuilderFormat,
  translateWorkflow,
  WorkflowValidationError,
  type WorkflowProblem,
} from '../../src/workflows/builder-graph.js';
import { builderEdge, builderNode, toolLoopGraph } from '../helpers/workflow-graphs.js';

const TOOLS = ['calculator', 'current_time', 'local__add'];

const problemsOf = (run: () => unknown): WorkflowProblem[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof WorkflowValidationError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a WorkflowValidationError');
};

describe('translateWorkflow', () => {
  it('turns the builder\u2019s start, model, conditional, tool and end nodes into a graph definition that validates', () => {
    const { nodes, edges } = toolLoopGraph(['calculator', 'local__add'], {
      system_message: 'Be exact.',
      provider: 'openai',
      model: 'gpt-4o-mini',
      max_tokens: 300,
    });
    const { definition, settings } = translateWorkflow(nodes, edges, { toolNames: TOOLS });
    expect(definition).toEqual({
      name: CUSTOM_WORKFLOW,
      entry: 'agent',
      nodes: [
        { id: 'agent', type: 'model', config: { systemPrompt: 'Be exact.' } },
        { id: 'route', type: 'conditional' },
        { id: 'toolbox', type: 'tools', config: { tools: ['calculator', 'local__add'] } },
      ],
      edges: [
        { from: 'agent', to: 'route' },
        { from: 'route', to: 'toolbox', condition: 'has_tool_calls' },
        { from: 'route', to: '__end__', condition: 'no_tool_calls' },
        { from: 'toolbox', to: 'agent' },
      ],
    });
    expect(settings).toEqual({ provider: 'openai', model: 'gpt-4o-mini', temperature: undefined, maxTokens: 300 });
    expect(() => validateGraphDefinition(definition, { toolNames: TOOLS })).not.toThrow();
  });

  it('offers every tool of the user to a tool node that lists none', () => {
    const { nodes, edges } = toolLoopGraph([]);
    const { definition } = translateWorkflow(nodes, edges, { toolNames: TOOLS });
    expect(definition.nodes[2]).toEqual({ id: 'toolbox', type: 'tools', config: { tools: TOOLS } });
    expect(problemsOf(() => translateWorkflow(nodes, edges, { toolNames: [] }))).toEqual([
      {
        loc: ['body', 'nodes', 3, 'data', 'config', 'tools'],
        msg: 'node "toolbox": you have no tool switched on for a tool node to offer',
        type: 'workflow.no_tools',
      },
    ]);
  });

  it('starts without a start node at the one node no edge leads to, and refuses a graph with several', () => {
    const nodes = [
      builderNode('memory', 'memory', { window: 6 }),
      builderNode('agent', 'llm', { tool_choice: 'omit' }),
      builderNode('done', 'end'),
    ];
    const edges = [builderEdge('a', 'memory', 'agent'), builderEdge('b', 'agent', 'done')];
    expect(translateWorkflow(nodes, edges, { toolNames: TOOLS }).definition).toMatchObject({
      entry: 'memory',
      edges: [
        { from: 'memory', to: 'agent' },
        { from: 'agent', to: '__end__' },
      ],
    });
    expect(problemsOf(() => translateWorkflow(nodes, edges.slice(1), { toolNames: TOOLS })).map((problem) => problem.msg)).toEqual([
      'no start node, and 2 nodes have no incoming edge (memory, agent): add a start node leading to the first one',
    ]);
  });

  it('round-trips the built-in templates through the builder format', () => {
    for (const template of listTemplates()) {
      const { nodes, edges } = toBuilderFormat(template);
      const { definition } = translateWorkflow(nodes, edges, { toolNames: ['calculator', 'current_time'] });
      expect({ ...definition, name: template.name, description: template.description }).toEqual(template);
    }
  });

  it('names the node or edge of each problem, with its place in the request', () => {
    const graph = toolLoopGraph(['calculator']);
    const agentA = builderNode('agent', 'model', { temperature: 0.3 });
    const agentB = builderNode('second', 'model', { temperature: 0.9 });
    expect(
      problemsOf(() =>
        translateWorkflow(
          [graph.nodes[0]!, agentA, agentB, builderNode('end', 'end')],
          [builderEdge('s', 'start', 'agent'), builderEdge('x', 'agent', 'second'), builderEdge('y', 'second', 'end')],
          { toolNames: TOOLS },
        ),
      ),
    ).toEqual([
      {
        loc: ['body', 'nodes', 2, 'data', 'config', 'temperature'],
        msg: 'node "second": temperature 0.9 differs from node "agent"\'s 0.3; a run has one model, so model nodes must agree',
        type: 'workflow.conflicting_model_settings',
      },
    ]);
    const noCondition = { ...graph, nodes: graph.nodes.map((node) => (node.id === 'route' ? builderNode('route', 'conditional') : node)) };
    expect(
      problemsOf(() => translateWorkflow(noCondition.nodes, noCondition.edges, { toolNames: TOOLS })).map((problem) => problem.msg),
    ).toEqual([
      'edge "e-true" (route → toolbox): leaves the "true" handle of node "route", which has no condition',
      'edge "e-false" (route → end): leaves the "false" handle of node "route", which has no condition',
    ]);
    const loop = {
      nodes: [builderNode('start', 'start'), builderNode('a', 'model', { tool_choice: 'omit' }), builderNode('b', 'memory', { window: 3 })],
      edges: [builderEdge('1', 'start', 'a'), builderEdge('2', 'a', 'b'), builderEdge('3', 'b', 'a')],
    };
    expect(problemsOf(() => translateWorkflow(loop.nodes, loop.edges, { toolNames: TOOLS }))).toEqual([
      {
        loc: ['body', 'nodes', 1],
        msg: 'node "a": has no path to __end__, so a run through it could never finish',
        type: 'workflow.invalid_node',
      },
      {
        loc: ['body', 'nodes', 2],
        msg: 'node "b": has no path to __end__, so a run through it could never finish',
        type: 'workflow.invalid_node',
      },
      {
        loc: ['body', 'nodes', 1],
        msg: 'nodes a → b → a: form a loop with no tools node, which could never end',
        type: 'workflow.invalid_loop',
      },
    ]);
    expect(
      problemsOf(() => translateWorkflow([{ id: 7 } as never], [{ source: 'a' } as never], { toolNames: TOOLS })).map(
        (problem) => problem.loc,
      ),
    ).toEqual([
      ['body', 'nodes', 0],
      ['body', 'edges', 0],
    ]);
  });
});
