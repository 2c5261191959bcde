import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { SERVICE_NAME, SERVICE_VERSION } from '../version.js';

/** What the pool needs to reach one server (a row of tool_servers, as it was read). */
export type McpServerTarget = {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  /** `http`: Streamable HTTP, falling back to HTTP+SSE on a 4xx; `sse`: HTTP+SSE only. */
  readonly transport: 'http' | 'sse';
  readonly headers: Readonly<Record<string, string>>;
  /** The server's own timeout; calls use the smaller of it and the pool's `callTimeoutMs`. */
  readonly timeoutMs: number;
  /** Changes whenever the row does (its updated_at): a changed server gets a new connection. */
  readonly version: string;
};

/** The outcome of one connection attempt or check, for the server's health fields. */
export type McpHealth = {
  readonly serverId: string;
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error: string | null;
  readonly at: Date;
};

/** A server could not be reached, or did not answer in time: the message is for the model and the user. */
export class McpUnavailableError extends Error {
  public override readonly name = 'McpUnavailableError';
}

export type McpClientPoolOptions = {
  /** Longest a connection (transport start + MCP initialize) may take. */
  readonly connectTimeoutMs: number;
  /** Longest any request (tools/call, tools/list, ping) may take, whatever the server's own timeout says. */
  readonly callTimeoutMs: number;
  /** Told of every connection attempt (the service records it as the server's health). */
  readonly onHealth?: (health: McpHealth) => void;
  readonly logger: Logger;
  readonly now?: () => number;
};

type Connection = {
  readonly version: string;
  readonly client: Client;
  readonly transport: 'streamable-http' | 'sse';
};

type Entry = { readonly version: string; readonly connection: Promise<Connection> };

const messageOf = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  // fetch() says only "fetch failed"; the reason (ECONNREFUSED…) is its cause.
  if (cause !== undefined && typeof cause.code === 'string') {
    return `${error.message} (${cause.code}${typeof cause.message === 'string' && cause.message !== '' ? `: ${cause.message}` : ''})`;
  }
  return error.message;
};

/** The request cannot have reached the server: safe to send again on a fresh connection. */
const neverDelivered = (error: unknown): boolean => {
  // A Streamable HTTP session the server no longer knows (it restarted): the spec says start a new one.
  if (error instanceof StreamableHTTPError && error.code === 404) return true;
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED' || (error instanceof Error && /Not connected/.test(error.message));
};

/** A JSON-RPC answer from the server (unknown tool, bad params…): the connection is fine. */
const isServerAnswer = (error: unknown): boolean =>
  error instanceof McpError && error.code !== ErrorCode.ConnectionClosed && error.code !== ErrorCode.RequestTimeout;

const isTimeout = (error: unknown): boolean => error instanceof McpError && error.code === ErrorCode.RequestTimeout;

/**
 * MCP clients, one per tool server per instance, connected on first use and reused by
 * every call after (a connection costs an HTTP round trip or two plus the MCP handshake).
 * A connection that fails is dropped and made again by the next call; a call that could
 * not have reached the server (connection refused, session unknown) is sent once more on
 * a fresh connection. Timeouts and unreachable servers become `McpUnavailableError`s.
 */
export class McpClientPool {
  private readonly entries = new Map<string, Entry>();
  private readonly options: McpClientPoolOptions;
  private readonly now: () => number;
  private closed = false;

  public constructor(options: McpClientPoolOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  private timeoutFor(server: McpServerTarget): number {
    return Math.min(server.timeoutMs, this.options.callTimeoutMs);
  }

  /**
   * Calls a tool. The result's `isError` is left to the caller (a tool that failed is an answer).
   * @throws McpUnavailableError when the server cannot be reached or does not answer in time.
   * @throws McpError when the server answers with a JSON-RPC error (unknown tool, invalid arguments).
   */
  public async callTool(
    server: McpServerTarget,
    tool: string,
    args: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<CallToolResult> {
    const timeout = this.timeoutFor(server);
    return this.request(server, `tools/call ${JSON.stringify(tool)}`, timeout, signal, async (client) => {
      const result = await client.callTool({ name: tool, arguments: args }, undefined, {
        timeout,
        ...(signal === undefined ? {} : { signal }),
      });
      return result as CallToolResult;
    });
  }

  /** Every tool the server lists (following pagination). @throws McpUnavailableError */
  public async listTools(server: McpServerTarget): Promise<Tool[]> {
    const timeout = this.timeoutFor(server);
    return this.request(server, 'tools/list', timeout, undefined, async (client) => {
      const tools: Tool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined && tools.length < 10_000);
      return tools;
    });
  }

  /** A health check: connects if need be, then an MCP ping; reports its round trip. */
  public async check(server: McpServerTarget): Promise<McpHealth> {
    const started = this.now();
    try {
      await this.request(server, 'ping', this.timeoutFor(server), undefined, (client) => client.ping({ timeout: this.timeoutFor(server) }));
      const health = { serverId: server.id, ok: true, latencyMs: this.now() - started, error: null, at: new Date(this.now()) };
      this.options.onHealth?.(health);
      return health;
    } catch (error) {
      const health = { serverId: server.id, ok: false, latencyMs: this.now() - started, error: messageOf(error), at: new Date(this.now()) };
      this.options.onHealth?.(health);
      return health;
    }
  }

  /** Closes the server's connection (it was changed, disabled or deleted). */
  public async release(serverId: string): Promise<void> {
    const entry = this.entries.get(serverId);
    this.entries.delete(serverId);
    await this.closeEntry(entry);
  }

  /** Closes every connection; calls after this fail. */
  public async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((entry) => this.closeEntry(entry)));
  }

  /** How many servers this instance holds a connection (or attempt) for. */
  public size(): number {
    return this.entries.size;
  }

  private async closeEntry(entry: Entry | undefined): Promise<void> {
    if (entry === undefined) return;
    const connection = await entry.connection.catch(() => undefined);
    await connection?.client.close().catch(() => undefined);
  }

  private async request<T>(
    server: McpServerTarget,
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    send: (client: Client) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      const entry = this.entryFor(server);
      let connection: Connection;
      try {
        connection = await entry.connection;
      } catch (error) {
        this.drop(server.id, entry);
        throw new McpUnavailableError(`MCP server ${JSON.stringify(server.name)} is unreachable: ${messageOf(error)}`, { cause: error });
      }
      try {
        return await send(connection.client);
      } catch (error) {
        // The run was cancelled: the SDK told the server (notifications/cancelled); the connection is fine.
        if (signal?.aborted === true || isServerAnswer(error)) throw error;
        if (isTimeout(error)) {
          throw new McpUnavailableError(`MCP server ${JSON.stringify(server.name)} did not answer ${what} within ${timeoutMs} ms`, {
            cause: error,
          });
        }
        // The connection broke: the next call makes a new one.
        this.drop(server.id, entry);
        await connection.client.close().catch(() => undefined);
        if (attempt === 0 && neverDelivered(error)) continue;
        throw new McpUnavailableError(`MCP server ${JSON.stringify(server.name)} failed during ${what}: ${messageOf(error)}`, {
          cause: error,
        });
      }
    }
  }

  private drop(serverId: string, entry: Entry): void {
    if (this.entries.get(serverId) === entry) this.entries.delete(serverId);
  }

  private entryFor(server: McpServerTarget): Entry {
    if (this.closed) {
      return { version: server.version, connection: Promise.reject(new Error('the service is shutting down')) };
    }
    const existing = this.entries.get(server.id);
    if (existing !== undefined && existing.version === server.version) return existing;
    if (existing !== undefined) void this.closeEntry(existing);
    const entry: Entry = { version: server.version, connection: this.connect(server) };
    // Nobody may be awaiting it yet; the rejection is handled where it is awaited.
    entry.connection.catch(() => undefined);
    this.entries.set(server.id, entry);
    return entry;
  }

  private async connect(server: McpServerTarget): Promise<Connection> {
    const started = this.now();
    try {
      const connection = await this.withConnectTimeout(server, async (transports) => {
        if (server.transport === 'sse') {
          return { client: await this.open(server, transports, 'sse'), transport: 'sse' as const };
        }
        try {
          return { client: await this.open(server, transports, 'streamable-http'), transport: 'streamable-http' as const };
        } catch (error) {
          // An HTTP+SSE-only server answers the Streamable HTTP POST with a 4xx (404/405): try the old transport.
          if (!(error instanceof StreamableHTTPError) || error.code === undefined || error.code < 400 || error.code >= 500) throw error;
          this.options.logger.debug({ serverId: server.id, status: error.code }, 'MCP server refused Streamable HTTP; trying HTTP+SSE');
          return { client: await this.open(server, transports, 'sse'), transport: 'sse' as const };
        }
      });
      this.options.onHealth?.({ serverId: server.id, ok: true, latencyMs: this.now() - started, error: null, at: new Date(this.now()) });
      return { version: server.version, ...connection };
    } catch (error) {
      this.options.onHealth?.({
        serverId: server.id,
        ok: false,
        latencyMs: this.now() - started,
        error: messageOf(error),
        at: new Date(this.now()),
      });
      throw error;
    }
  }

  private async open(server: McpServerTarget, transports: Transport[], kind: 'streamable-http' | 'sse'): Promise<Client> {
    const url = new URL(server.url);
    const requestInit: RequestInit = { headers: { ...server.headers } };
    const transport =
      kind === 'sse' ? new SSEClientTransport(url, { requestInit }) : new StreamableHTTPClientTransport(url, { requestInit });
    transports.push(transport);
    const client = new Client({ name: SERVICE_NAME, version: SERVICE_VERSION });
    client.onerror = (error) => this.options.logger.debug({ err: error, serverId: server.id }, 'MCP transport error');
    try {
      await client.connect(transport, { timeout: this.options.connectTimeoutMs });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
    return client;
  }

  /** Transport start (an SSE GET can hang before any request timer runs) and handshake, under one deadline. */
  private async withConnectTimeout<T>(server: McpServerTarget, connect: (transports: Transport[]) => Promise<T>): Promise<T> {
    const transports: Transport[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        for (const transport of transports) void transport.close().catch(() => undefined);
        reject(new Error(`no connection within ${this.options.connectTimeoutMs} ms`));
      }, this.options.connectTimeoutMs);
    });
    try {
      return await Promise.race([connect(transports), deadline]);
    } finally {
      clearTimeout(timer);
      this.options.logger.trace({ serverId: server.id }, 'MCP connect attempt ended');
    }
  }
}
