import type { Logger } from 'pino';
import type { OfferedToolRow, ToolServersRepository } from '../repositories/tool-servers-repository.js';
import type { McpClientPool, McpServerTarget } from './mcp-client-pool.js';
import { createMcpTool, type ToolInputSchema } from './mcp-tools.js';
import { BUILTIN_TOOL_NAMES, createToolRegistry, type ToolRegistry } from './tool-registry.js';

/** Registries kept for reuse; past it the least recently used is dropped (and its compiled graphs with it). */
const MAX_REGISTRIES = 256;

export type UserToolSetsOptions = {
  readonly repository: Pick<ToolServersRepository, 'disabledBuiltins' | 'offeredTools'>;
  readonly pool: McpClientPool;
  /** Clock of the `current_time` tool. */
  readonly now?: () => Date;
  readonly logger: Logger;
};

export const targetOf = (row: {
  server_id: string;
  server_name: string;
  base_url: string;
  transport_type: 'http' | 'sse';
  headers: Record<string, string>;
  timeout_seconds: number;
  server_updated_at: string;
}): McpServerTarget => ({
  id: row.server_id,
  name: row.server_name,
  url: row.base_url,
  transport: row.transport_type,
  headers: row.headers,
  timeoutMs: row.timeout_seconds * 1000,
  version: row.server_updated_at,
});

/**
 * The tools a user's runs are offered: the built-ins they did not switch off and the
 * enabled tools of their enabled MCP servers, read from the database when a run starts
 * (so every instance offers the same set).
 *
 * Users with the same set share one registry object: `createGraph` compiles a
 * definition once per registry, so a registry is interned by a key naming every tool
 * and the version of its server and schema, and a changed set gets a new one.
 */
export class UserToolSets {
  private readonly options: UserToolSetsOptions;
  private readonly registries = new Map<string, ToolRegistry>();

  public constructor(options: UserToolSetsOptions) {
    this.options = options;
  }

  /** The user's tool set as a registry (shared with every user holding the same set). */
  public async forUser(userId: string): Promise<ToolRegistry> {
    const [disabled, offered] = await Promise.all([
      this.options.repository.disabledBuiltins(userId),
      this.options.repository.offeredTools(userId),
    ]);
    const builtins = BUILTIN_TOOL_NAMES.filter((name) => !disabled.has(name));
    const remote = this.unique(offered);
    const key = JSON.stringify([
      builtins,
      remote.map((row) => [row.tool_id, row.exposed_name, row.tool_updated_at, row.server_id, row.server_updated_at]),
    ]);
    const known = this.registries.get(key);
    if (known !== undefined) {
      // Most recently used last.
      this.registries.delete(key);
      this.registries.set(key, known);
      return known;
    }
    const registry = createToolRegistry({
      builtins,
      ...(this.options.now === undefined ? {} : { now: this.options.now }),
      extraTools: remote.map((row) =>
        createMcpTool(
          {
            server: targetOf(row),
            name: row.name,
            exposedName: row.exposed_name,
            description: row.description,
            inputSchema: row.input_schema as ToolInputSchema,
          },
          this.options.pool,
        ),
      ),
    });
    if (this.registries.size >= MAX_REGISTRIES) {
      const [oldest] = this.registries.keys();
      if (oldest !== undefined) this.registries.delete(oldest);
    }
    this.registries.set(key, registry);
    return registry;
  }

  /** Registries held now (for tests and diagnostics). */
  public size(): number {
    return this.registries.size;
  }

  /** Exposed names are unique by construction; should two rows still share one, the first (oldest server) wins. */
  private unique(rows: readonly OfferedToolRow[]): OfferedToolRow[] {
    const seen = new Set<string>(BUILTIN_TOOL_NAMES);
    return rows.filter((row) => {
      if (seen.has(row.exposed_name)) {
        this.options.logger.warn({ tool: row.exposed_name, serverId: row.server_id }, 'two tools share one name; the later is not offered');
        return false;
      }
      seen.add(row.exposed_name);
      return true;
    });
  }
}
