import { END } from '@langchain/langgraph';
import type { GraphDefinition } from '../graphs/definition.js';

/** Past it, execution paths are not counted further. */
const MAX_PATHS = 10_000;
/** Node visits the path walk may make (simple paths can be exponentially many). */
const MAX_VISITS = 100_000;

/** The structure of a graph, as the contract's `ComplexityMetrics` (and its path count and loops) describe it. */
export type GraphShape = {
  readonly complexity: {
    score: number;
    node_count: number;
    edge_count: number;
    depth: number;
    branching_factor: number;
    loop_complexity: number;
    conditional_complexity: number;
  };
  /** Paths from the entry to `__end__` that visit no node twice (counted up to MAX_PATHS, or MAX_VISITS steps). */
  readonly executionPaths: number;
  /** Edges that lead back to a node on the path to them (loops, which tool calls drive). */
  readonly loops: readonly { from: string; to: string }[];
};

/**
 * Measures a graph definition: its nodes and edges, its depth (longest path from the
 * entry without revisiting a node), branching (edges per node with an outgoing edge), its
 * loops and conditional edges; `score` is nodes + edges + 2 × conditional edges + 3 × loops.
 */
export function graphShape(definition: GraphDefinition): GraphShape {
  const outgoing = (id: string) => definition.edges.filter((edge) => edge.from === id);
  const loops: { from: string; to: string }[] = [];
  let depth = 0;
  let paths = 0;
  let visits = 0;
  const walk = (id: string, path: Set<string>): void => {
    visits += 1;
    if (paths >= MAX_PATHS || visits > MAX_VISITS) return;
    depth = Math.max(depth, path.size);
    for (const edge of outgoing(id)) {
      if (edge.to === END) {
        paths += 1;
      } else if (path.has(edge.to)) {
        if (!loops.some((loop) => loop.from === edge.from && loop.to === edge.to)) loops.push({ from: edge.from, to: edge.to });
      } else {
        walk(edge.to, new Set([...path, edge.to]));
      }
    }
  };
  walk(definition.entry, new Set([definition.entry]));
  const sources = new Set(definition.edges.map((edge) => edge.from)).size;
  const conditional = definition.edges.filter((edge) => edge.condition !== undefined && edge.condition.trim() !== 'always').length;
  const nodeCount = definition.nodes.length;
  const edgeCount = definition.edges.length;
  return {
    complexity: {
      score: nodeCount + edgeCount + 2 * conditional + 3 * loops.length,
      node_count: nodeCount,
      edge_count: edgeCount,
      depth,
      branching_factor: sources === 0 ? 0 : edgeCount / sources,
      loop_complexity: loops.length,
      conditional_complexity: conditional,
    },
    executionPaths: paths,
    loops,
  };
}
