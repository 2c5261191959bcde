import { type Condition, type RoutingFacts, describeFacts, evaluateCondition, parseCondition, situations } from './conditions.js';
import { END as END_NODE, START as START_NODE } from '@langchain/langgraph';
import type { GraphDefinition } from './definition.js';

type ParsedEdge = { index: number; from: string; to: string; condition: Condition };

/**
 * The first edge (in definition order) whose condition holds: the routing rule
 * `build-graph` follows, shared here so validation checks exactly what runs.
 */
export function selectEdge<E extends { condition: Condition }>(edges: readonly E[], facts: RoutingFacts): E | undefined {
  return edges.find((edge) => evaluateCondition(edge.condition, facts));
}

/**
 * Cross-reference checks of a definition whose shape is valid: edge endpoints,
 * conditions, coverage of every node's outgoing edges, reachability, and a path to
 * `__end__` from every node. Returns the problems found (empty when none).
 */
export function checkRouting(definition: GraphDefinition, nodeIds: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const nodeLabel = (id: string): string => `node ${JSON.stringify(id)}`;

  if (definition.entry === END_NODE || definition.entry === START_NODE) {
    problems.push(`entry: must be a node id, not ${JSON.stringify(definition.entry)}`);
  } else if (!nodeIds.has(definition.entry)) {
    problems.push(`entry: unknown node ${JSON.stringify(definition.entry)}`);
  }

  const edges: ParsedEdge[] = [];
  for (const [index, edge] of definition.edges.entries()) {
    const where = `edges[${index}] (${edge.from} → ${edge.to})`;
    let ok = true;
    if (edge.from === START_NODE) {
      problems.push(`${where}: edges may not leave ${START_NODE}; set "entry" to the first node instead`);
      ok = false;
    } else if (edge.from === END_NODE) {
      problems.push(`${where}: edges may not leave ${END_NODE}`);
      ok = false;
    } else if (!nodeIds.has(edge.from)) {
      problems.push(`${where}: unknown source node ${JSON.stringify(edge.from)}`);
      ok = false;
    }
    if (edge.to === START_NODE) {
      problems.push(`${where}: edges may not lead to ${START_NODE}; lead to the entry node instead`);
      ok = false;
    } else if (edge.to !== END_NODE && !nodeIds.has(edge.to)) {
      problems.push(`${where}: unknown target node ${JSON.stringify(edge.to)}`);
      ok = false;
    }
    const condition = parseCondition(edge.condition ?? 'always');
    if ('error' in condition) {
      problems.push(`${where}: ${condition.error}`);
      ok = false;
    }
    if (ok && !('error' in condition)) edges.push({ index, from: edge.from, to: edge.to, condition });
  }

  const toolsNodeIds = new Set(definition.nodes.filter((node) => node.type === 'tools').map((node) => node.id));
  for (const node of definition.nodes) {
    const outgoing = edges.filter((edge) => edge.from === node.id);
    const invalidOutgoing = definition.edges.some((edge, index) => edge.from === node.id && !edges.some((e) => e.index === index));
    if (invalidOutgoing) continue; // already reported; coverage would only add noise
    if (outgoing.length === 0) {
      problems.push(`${nodeLabel(node.id)}: has no outgoing edge; add one to another node or to ${END_NODE}`);
      continue;
    }
    const taken = new Set<number>();
    const bindsTools = node.type === 'model' && (node.config?.tools ?? 'auto') === 'auto' && toolsNodeIds.size > 0;
    let uncovered: string | undefined;
    let unanswered: string | undefined;
    for (const { facts, usesLimit } of situations(outgoing.map((edge) => edge.condition))) {
      const edge = selectEdge(outgoing, facts);
      if (!edge) {
        uncovered ??=
          `${nodeLabel(node.id)}: no edge applies when ${describeFacts(facts, usesLimit)}; ` +
          'its conditional edges must cover every case (add the missing branch or a final "always" edge)';
        continue;
      }
      taken.add(edge.index);
      if (bindsTools && facts.hasToolCalls && !toolsNodeIds.has(edge.to) && !isConditional(definition, edge.to)) {
        unanswered ??=
          `${nodeLabel(node.id)}: when the model asks for tools (${describeFacts(facts, usesLimit)}) it routes to ` +
          `${JSON.stringify(edge.to)}, leaving the tool calls unanswered; route that case to a tools node`;
      }
    }
    if (uncovered) problems.push(uncovered);
    if (unanswered) problems.push(unanswered);
    for (const edge of outgoing) {
      if (!taken.has(edge.index)) {
        problems.push(
          `edges[${edge.index}] (${edge.from} → ${edge.to}): is never taken: an earlier edge from ${JSON.stringify(edge.from)} ` +
            'always applies first or its condition can never hold',
        );
      }
    }
  }

  // Reachability of a graph with broken edges would only echo the problems above.
  if (problems.length > 0) return problems;
  problems.push(...checkReachability(definition, edges));
  problems.push(...checkLoops(definition, edges, toolsNodeIds));
  return problems;
}

/**
 * Only tool calls change what routing sees between two passes, and the tool-call
 * limit bounds them; a loop that skips every tools node would spin until LangGraph's
 * recursion limit.
 */
function checkLoops(definition: GraphDefinition, edges: readonly ParsedEdge[], toolsNodeIds: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const next = (id: string): string[] => edges.filter((edge) => edge.from === id && !toolsNodeIds.has(edge.to)).map((edge) => edge.to);
  const reported = new Set<string>();
  for (const node of definition.nodes) {
    if (toolsNodeIds.has(node.id) || reported.has(node.id)) continue;
    const path = findCycle(node.id, next);
    if (path) {
      path.forEach((id) => reported.add(id));
      problems.push(`nodes ${path.concat(path[0] ?? '').join(' → ')}: form a loop with no tools node, which could never end`);
    }
  }
  return problems;
}

/** A cycle from `start` back to itself (as the list of its nodes), or undefined. */
function findCycle(start: string, next: (id: string) => string[]): string[] | undefined {
  const visited = new Set<string>();
  const search = (id: string, path: string[]): string[] | undefined => {
    for (const target of next(id)) {
      if (target === start) return path;
      if (visited.has(target)) continue;
      visited.add(target);
      const found = search(target, [...path, target]);
      if (found) return found;
    }
    return undefined;
  };
  return search(start, [start]);
}

function isConditional(definition: GraphDefinition, id: string): boolean {
  return definition.nodes.some((node) => node.id === id && node.type === 'conditional');
}

function checkReachability(definition: GraphDefinition, edges: readonly ParsedEdge[]): string[] {
  const problems: string[] = [];
  const reached = walk(definition.entry, (id) => edges.filter((edge) => edge.from === id).map((edge) => edge.to));
  for (const node of definition.nodes) {
    if (!reached.has(node.id))
      problems.push(`node ${JSON.stringify(node.id)}: is unreachable from the entry node ${JSON.stringify(definition.entry)}`);
  }
  const reachesEnd = walk(END_NODE, (id) => edges.filter((edge) => edge.to === id).map((edge) => edge.from));
  for (const node of definition.nodes) {
    if (reached.has(node.id) && !reachesEnd.has(node.id)) {
      problems.push(`node ${JSON.stringify(node.id)}: has no path to ${END_NODE}, so a run through it could never finish`);
    }
  }
  return problems;
}

function walk(from: string, next: (id: string) => string[]): Set<string> {
  const seen = new Set<string>([from]);
  const queue = [from];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const target of next(id)) {
      if (!seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return seen;
}
