/**
 * Edge conditions of graph definitions: a small grammar parsed once, evaluated against
 * the routing facts of a state (does the last message ask for tools, how many tool
 * calls ran so far).
 *
 * A condition is one clause or several joined by `&&` (all must hold):
 *   always | has_tool_calls | no_tool_calls | tool_calls < N | tool_calls >= N
 * where N is a non-negative integer or `limit` (the graph's `toolCallLimit`).
 */

export type ToolCallBound = number | 'limit';

export type Clause =
  | { kind: 'always' }
  | { kind: 'has_tool_calls' }
  | { kind: 'no_tool_calls' }
  | { kind: 'tool_calls'; op: '<' | '>='; bound: ToolCallBound };

export type Condition = Clause[];

/** What a condition can look at. */
export type RoutingFacts = {
  /** The last message is an AI message with at least one tool call. */
  hasToolCalls: boolean;
  /** Tool calls run so far in this run. */
  toolCallCount: number;
  /** The graph's tool-call limit, which `limit` stands for. */
  limit: number;
};

export const CONDITION_SYNTAX =
  '"always", "has_tool_calls", "no_tool_calls", "tool_calls < N" or "tool_calls >= N" (N an integer or "limit"), joined with "&&"';

const TOOL_CALLS = /^tool_calls\s*(<|>=)\s*(\d+|limit)$/;

/**
 * Parses a condition string.
 * @returns the clauses, or a message describing the problem.
 */
export function parseCondition(source: string): Condition | { error: string } {
  const clauses: Clause[] = [];
  for (const raw of source.split('&&')) {
    const text = raw.trim();
    if (text === 'always' || text === 'has_tool_calls' || text === 'no_tool_calls') {
      clauses.push({ kind: text });
      continue;
    }
    const match = TOOL_CALLS.exec(text);
    if (match) {
      const [, op, bound] = match as unknown as [string, '<' | '>=', string];
      clauses.push({ kind: 'tool_calls', op, bound: bound === 'limit' ? 'limit' : Number(bound) });
      continue;
    }
    return { error: `unknown condition ${JSON.stringify(text)}: expected ${CONDITION_SYNTAX}` };
  }
  return clauses;
}

export function isUnconditional(condition: Condition): boolean {
  return condition.every((clause) => clause.kind === 'always');
}

function holds(clause: Clause, facts: RoutingFacts): boolean {
  switch (clause.kind) {
    case 'always':
      return true;
    case 'has_tool_calls':
      return facts.hasToolCalls;
    case 'no_tool_calls':
      return !facts.hasToolCalls;
    case 'tool_calls': {
      const bound = clause.bound === 'limit' ? facts.limit : clause.bound;
      return clause.op === '<' ? facts.toolCallCount < bound : facts.toolCallCount >= bound;
    }
  }
}

export function evaluateCondition(condition: Condition, facts: RoutingFacts): boolean {
  return condition.every((clause) => holds(clause, facts));
}

export function describeFacts(facts: RoutingFacts, usesLimit: boolean): string {
  const calls = `${facts.hasToolCalls ? 'the last message has tool calls' : 'the last message has no tool calls'}`;
  return `${calls} and tool_calls = ${facts.toolCallCount}${usesLimit ? ` with limit = ${facts.limit}` : ''}`;
}

/**
 * Every distinct situation a set of conditions can tell apart, for checking that a
 * node's edges cover them all. Clauses change truth only at their bounds, so counts at
 * each bound and one below it, with the limit placed at and just after each numeric
 * bound (and at 1, its smallest value), represent every region.
 */
export function situations(conditions: readonly Condition[]): { facts: RoutingFacts; usesLimit: boolean }[] {
  const numeric = new Set<number>();
  let usesLimit = false;
  for (const clause of conditions.flat()) {
    if (clause.kind !== 'tool_calls') continue;
    if (clause.bound === 'limit') usesLimit = true;
    else numeric.add(clause.bound);
  }
  const limits = usesLimit ? [...new Set([1, ...[...numeric].flatMap((n) => [n, n + 1])])].filter((n) => n >= 1) : [1];
  const result: { facts: RoutingFacts; usesLimit: boolean }[] = [];
  for (const limit of limits) {
    const bounds = usesLimit ? [...numeric, limit] : [...numeric];
    const counts = [...new Set([0, ...bounds.flatMap((n) => [n - 1, n])])].filter((n) => n >= 0).sort((a, b) => a - b);
    for (const hasToolCalls of [true, false]) {
      for (const toolCallCount of counts) result.push({ facts: { hasToolCalls, toolCallCount, limit }, usesLimit });
    }
  }
  return result;
}
