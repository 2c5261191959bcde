import type { StructuredToolInterface } from '@langchain/core/tools';
import { createCalculatorTool } from './calculator.js';
import { createCurrentTimeTool } from './current-time.js';

/** A tool name that no registered tool has. */
export class UnknownToolError extends Error {
  override readonly name = 'UnknownToolError';
  constructor(
    readonly toolName: string,
    readonly known: readonly string[] = [],
  ) {
    super(`Unknown tool ${JSON.stringify(toolName)}${known.length > 0 ? `; known tools: ${known.join(', ')}` : ''}`);
  }
}

export type ToolRegistry = {
  /** @throws {UnknownToolError} */
  get(name: string): StructuredToolInterface;
  has(name: string): boolean;
  /** Every tool, built-ins first, in registration order. */
  list(): StructuredToolInterface[];
  /** The named tools in the order given. @throws {UnknownToolError} on the first unknown name. */
  pick(names: readonly string[]): StructuredToolInterface[];
  names(): string[];
};

/** Names of the tools every registry has, for validating definitions without building tools. */
export const BUILTIN_TOOL_NAMES = ['calculator', 'current_time'] as const;

export type ToolRegistryOptions = {
  /** Clock for `current_time`; defaults to the system clock. */
  now?: () => Date;
  /** Further tools to register beside the built-ins (names must be unique). */
  extraTools?: readonly StructuredToolInterface[];
  /** The built-in tools to include (default: all of them). */
  builtins?: readonly string[];
};

/**
 * Builds a registry holding the built-in tools (`calculator`, `current_time`) and any
 * extra tools.
 * @throws {Error} when two tools share a name.
 */
export function createToolRegistry({ now = () => new Date(), extraTools = [], builtins }: ToolRegistryOptions = {}): ToolRegistry {
  const tools = new Map<string, StructuredToolInterface>();
  const included = [createCalculatorTool(), createCurrentTimeTool({ now })].filter(
    (builtin) => builtins === undefined || builtins.includes(builtin.name),
  );
  for (const candidate of [...included, ...extraTools]) {
    if (tools.has(candidate.name)) throw new Error(`Duplicate tool name ${JSON.stringify(candidate.name)} in the tool registry`);
    tools.set(candidate.name, candidate);
  }
  const get = (name: string): StructuredToolInterface => {
    const found = tools.get(name);
    if (!found) throw new UnknownToolError(name, [...tools.keys()]);
    return found;
  };
  return {
    get,
    has: (name) => tools.has(name),
    list: () => [...tools.values()],
    pick: (names) => names.map(get),
    names: () => [...tools.keys()],
  };
}
