import type { DatabasePool } from 'slonik';
import type { Logger } from 'pino';
import { createToolServersRepository, type ToolServerRow, type ToolServersRepository } from '../repositories/tool-servers-repository.js';
import { McpClientPool, type McpHealth, type McpServerTarget } from './mcp-client-pool.js';
import { exposedToolName } from './mcp-tools.js';
import { UserToolSets } from './user-tool-sets.js';

export type ToolServersOptions = {
  readonly pool: DatabasePool;
  /** MCP_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs: number;
  /** MCP_TOOL_CALL_TIMEOUT_MS: the ceiling of every request to an MCP server. */
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
};

export type RefreshOutcome = { readonly ok: true; readonly tools: readonly string[] } | { readonly ok: false; readonly error: string };

export const targetOfServer = (row: ToolServerRow): McpServerTarget => ({
  id: row.id,
  name: row.name,
  url: row.base_url,
  transport: row.transport_type,
  headers: row.headers,
  timeoutMs: row.timeout_seconds * 1000,
  version: row.updated_at,
});

/**
 * Remote tool servers (MCP) as one component: the repository, this instance's MCP
 * connections and the users' tool sets. Every connection attempt and check is recorded
 * as the server's health, in the background; `close` waits for those writes and closes
 * the connections.
 */
export class ToolServers {
  public readonly repository: ToolServersRepository;
  public readonly clients: McpClientPool;
  public readonly toolSets: UserToolSets;
  private readonly logger: Logger;
  private readonly pending = new Set<Promise<void>>();

  public constructor(options: ToolServersOptions) {
    this.logger = options.logger;
    this.repository = createToolServersRepository(options.pool);
    this.clients = new McpClientPool({
      connectTimeoutMs: options.connectTimeoutMs,
      callTimeoutMs: options.callTimeoutMs,
      onHealth: (health) => this.record(health),
      logger: options.logger,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.toolSets = new UserToolSets({ repository: this.repository, pool: this.clients, logger: options.logger });
  }

  /**
   * Lists the server's tools through MCP `tools/list` and stores them (new ones enabled,
   * missing ones unavailable). A failure is recorded as the server's health, not thrown.
   */
  public async refreshTools(server: ToolServerRow): Promise<RefreshOutcome> {
    try {
      const tools = await this.clients.listTools(targetOfServer(server));
      await this.repository.replaceTools(
        server.id,
        tools.map((tool) => ({
          name: tool.name,
          exposedName: exposedToolName(server.name, tool.name),
          description: tool.description ?? tool.title ?? null,
          inputSchema: tool.inputSchema,
        })),
      );
      return { ok: true, tools: tools.map((tool) => tool.name) };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** A health check (connection and MCP ping), recorded; waits for the record. */
  public async check(server: ToolServerRow): Promise<McpHealth> {
    const health = await this.clients.check(targetOfServer(server));
    await this.settled();
    return health;
  }

  /** Waits for the health records in flight (so a response shows the check it made). */
  public async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  /** Drops this instance's connection to a changed, disabled or deleted server. */
  public async release(serverId: string): Promise<void> {
    await this.clients.release(serverId);
  }

  public async close(): Promise<void> {
    await this.clients.close();
    await this.settled();
  }

  private record(health: McpHealth): void {
    const write = this.repository
      .recordHealth(health.serverId, health)
      .catch((error: unknown) => this.logger.warn({ err: error, serverId: health.serverId }, 'tool server health not recorded'))
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }
}
