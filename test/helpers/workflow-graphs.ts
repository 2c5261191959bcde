/**
 * Workflow graphs in the frontend builder's format (openapi-full.json `WorkflowNode`,
 * `WorkflowEdge`), as its canvas sends them: positions, `data.label`, `data.nodeType`,
 * `data.config`, edges with `sourceHandle` and `data.condition`.
 */

type Node = {
  id: string;
  type: string;
  position: { x: number; y: number };
  data: { label: string; nodeType: string; config?: Record<string, unknown> };
};

export const builderNode = (id: string, nodeType: string, config: Record<string, unknown> = {}, y = 0): Node => ({
  id,
  type: nodeType,
  position: { x: 100, y },
  data: { label: id, nodeType, config },
});

export const builderEdge = (id: string, source: string, target: string, extra: Record<string, unknown> = {}) => ({
  id,
  source,
  target,
  ...extra,
});

/**
 * start → agent (model) → route (conditional on has_tool_calls): true → toolbox (tool
 * node with `tools`) → agent; false → end.
 */
export const toolLoopGraph = (
  tools: readonly string[],
  modelConfig: Record<string, unknown> = { system_message: 'You are a careful assistant.' },
) => ({
  nodes: [
    builderNode('start', 'start', {}, 0),
    builderNode('agent', 'model', modelConfig, 100),
    builderNode('route', 'conditional', { condition: 'has_tool_calls' }, 200),
    builderNode('toolbox', 'tool', { tools: [...tools] }, 300),
    builderNode('end', 'end', {}, 400),
  ],
  edges: [
    builderEdge('e-start', 'start', 'agent'),
    builderEdge('e-agent', 'agent', 'route'),
    builderEdge('e-true', 'route', 'toolbox', { sourceHandle: 'true' }),
    builderEdge('e-false', 'route', 'end', { sourceHandle: 'false' }),
    builderEdge('e-back', 'toolbox', 'agent'),
  ],
});
