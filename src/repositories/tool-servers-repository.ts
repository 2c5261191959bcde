import { sql, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';

const jsonObject = z.record(z.string(), z.unknown());

export const ToolServerRow = z.object({
  id: z.string(),
  user_id: z.string(),
  name: z.string(),
  display_name: z.string(),
  description: z.string().nullable(),
  base_url: z.string(),
  transport_type: z.enum(['http', 'sse']),
  headers: z.record(z.string(), z.string()),
  timeout_seconds: z.number(),
  auto_start: z.boolean(),
  auto_update: z.boolean(),
  max_failures: z.number(),
  enabled: z.boolean(),
  last_health_check: z.string().nullable(),
  last_health_ok: z.boolean().nullable(),
  last_health_latency_ms: z.number().nullable(),
  last_health_error: z.string().nullable(),
  last_success_at: z.string().nullable(),
  consecutive_failures: z.number(),
  tools_refreshed_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ToolServerRow = z.infer<typeof ToolServerRow>;

export const ServerToolRow = z.object({
  id: z.string(),
  server_id: z.string(),
  name: z.string(),
  exposed_name: z.string(),
  description: z.string().nullable(),
  input_schema: jsonObject,
  enabled: z.boolean(),
  available: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ServerToolRow = z.infer<typeof ServerToolRow>;

/** What the tool_calls records say about one tool name for one user. */
export const ToolCallStats = z.object({
  tool: z.string(),
  total_calls: z.number(),
  total_errors: z.number(),
  avg_duration_ms: z.number().nullable(),
  last_called: z.string().nullable(),
  last_error: z.string().nullable(),
});
export type ToolCallStats = z.infer<typeof ToolCallStats>;

/** An enabled tool of an enabled, healthy-enough server, with what calling it needs. */
export const OfferedToolRow = z.object({
  tool_id: z.string(),
  name: z.string(),
  exposed_name: z.string(),
  description: z.string().nullable(),
  input_schema: jsonObject,
  tool_updated_at: z.string(),
  server_id: z.string(),
  server_name: z.string(),
  base_url: z.string(),
  transport_type: z.enum(['http', 'sse']),
  headers: z.record(z.string(), z.string()),
  timeout_seconds: z.number(),
  server_updated_at: z.string(),
});
export type OfferedToolRow = z.infer<typeof OfferedToolRow>;

/** Another of the user's servers already has this name. */
export class DuplicateToolServerNameError extends Error {
  public constructor(name: string) {
    super(`a tool server named ${JSON.stringify(name)} already exists`);
    this.name = 'DuplicateToolServerNameError';
  }
}

export type ToolServerFields = {
  readonly name: string;
  readonly displayName: string;
  readonly description: string | null;
  readonly baseUrl: string;
  readonly transportType: 'http' | 'sse';
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly autoStart: boolean;
  readonly autoUpdate: boolean;
  readonly maxFailures: number;
};

export type ToolServerChanges = Partial<Omit<ToolServerFields, 'name'>>;

export type DiscoveredTool = {
  readonly name: string;
  readonly exposedName: string;
  readonly description: string | null;
  readonly inputSchema: Record<string, unknown>;
};

const SERVER_COLUMNS = sql.fragment`
  id, user_id, name, display_name, description, base_url, transport_type, headers, timeout_seconds, auto_start,
  auto_update, max_failures, enabled, last_health_check, last_health_ok, last_health_latency_ms, last_health_error,
  last_success_at, consecutive_failures, tools_refreshed_at, created_at, updated_at`;

const TOOL_COLUMNS = sql.fragment`
  t.id, t.server_id, t.name, t.exposed_name, t.description, t.input_schema, t.enabled, t.available, t.created_at, t.updated_at`;

const isUniqueViolation = (error: unknown): boolean => {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if ((current as { code?: unknown }).code === '23505' || /unique|duplicate key/i.test(current.message)) return true;
  }
  return false;
};

export type ToolServersRepository = ReturnType<typeof createToolServersRepository>;

/** Tool servers, their tools and the built-in tool switches, always scoped to one user. */
export const createToolServersRepository = (pool: DatabasePool) => ({
  listServers: async (userId: string): Promise<readonly ToolServerRow[]> =>
    pool.any(sql.type(ToolServerRow)`
      SELECT ${SERVER_COLUMNS} FROM tool_servers WHERE user_id = ${userId} ORDER BY created_at, id`),

  findServer: async (userId: string, id: string): Promise<ToolServerRow | null> =>
    pool.maybeOne(sql.type(ToolServerRow)`
      SELECT ${SERVER_COLUMNS} FROM tool_servers WHERE id = ${id} AND user_id = ${userId}`),

  /** @throws DuplicateToolServerNameError */
  createServer: async (userId: string, fields: ToolServerFields): Promise<ToolServerRow> => {
    try {
      return await pool.one(sql.type(ToolServerRow)`
        INSERT INTO tool_servers (id, user_id, name, display_name, description, base_url, transport_type, headers,
                                  timeout_seconds, auto_start, auto_update, max_failures)
        VALUES (${ulid()}, ${userId}, ${fields.name}, ${fields.displayName}, ${fields.description}, ${fields.baseUrl},
                ${fields.transportType}, ${sql.jsonb({ ...fields.headers })}, ${fields.timeoutSeconds}, ${fields.autoStart},
                ${fields.autoUpdate}, ${fields.maxFailures})
        RETURNING ${SERVER_COLUMNS}`);
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateToolServerNameError(fields.name);
      throw error;
    }
  },

  /** Changes the given fields (and updated_at: the server's connection is made again). */
  updateServer: async (userId: string, id: string, changes: ToolServerChanges): Promise<ToolServerRow | null> => {
    const sets = [sql.fragment`updated_at = now()`];
    if (changes.displayName !== undefined) sets.push(sql.fragment`display_name = ${changes.displayName}`);
    if (changes.description !== undefined) sets.push(sql.fragment`description = ${changes.description}`);
    if (changes.baseUrl !== undefined) sets.push(sql.fragment`base_url = ${changes.baseUrl}`);
    if (changes.transportType !== undefined) sets.push(sql.fragment`transport_type = ${changes.transportType}`);
    if (changes.headers !== undefined) sets.push(sql.fragment`headers = ${sql.jsonb({ ...changes.headers })}`);
    if (changes.timeoutSeconds !== undefined) sets.push(sql.fragment`timeout_seconds = ${changes.timeoutSeconds}`);
    if (changes.autoStart !== undefined) sets.push(sql.fragment`auto_start = ${changes.autoStart}`);
    if (changes.autoUpdate !== undefined) sets.push(sql.fragment`auto_update = ${changes.autoUpdate}`);
    if (changes.maxFailures !== undefined) sets.push(sql.fragment`max_failures = ${changes.maxFailures}`);
    return pool.maybeOne(sql.type(ToolServerRow)`
      UPDATE tool_servers SET ${sql.join(sets, sql.fragment`, `)}
      WHERE id = ${id} AND user_id = ${userId}
      RETURNING ${SERVER_COLUMNS}`);
  },

  deleteServer: async (userId: string, id: string): Promise<boolean> =>
    (await pool.query(sql.unsafe`DELETE FROM tool_servers WHERE id = ${id} AND user_id = ${userId}`)).rowCount > 0,

  setServerEnabled: async (userId: string, id: string, enabled: boolean): Promise<ToolServerRow | null> =>
    pool.maybeOne(sql.type(ToolServerRow)`
      UPDATE tool_servers SET enabled = ${enabled}
      WHERE id = ${id} AND user_id = ${userId}
      RETURNING ${SERVER_COLUMNS}`),

  /**
   * One health check's outcome. An older check than the one stored is ignored (checks of
   * several instances may finish out of order); updated_at is left alone (it versions the configuration).
   */
  recordHealth: async (serverId: string, health: { ok: boolean; latencyMs: number; error: string | null; at: Date }): Promise<void> => {
    const at = health.at.toISOString();
    await pool.query(sql.unsafe`
      UPDATE tool_servers SET
        last_health_check = ${at}::timestamptz,
        last_health_ok = ${health.ok},
        last_health_latency_ms = ${Math.max(0, Math.round(health.latencyMs))},
        last_health_error = ${health.error === null ? null : health.error.slice(0, 2000)},
        last_success_at = CASE WHEN ${health.ok} THEN ${at}::timestamptz ELSE last_success_at END,
        consecutive_failures = CASE WHEN ${health.ok} THEN 0 ELSE consecutive_failures + 1 END
      WHERE id = ${serverId} AND (last_health_check IS NULL OR last_health_check <= ${at}::timestamptz)`);
  },

  /**
   * Stores what tools/list returned: new tools are added enabled, listed ones updated
   * (their switch kept), tools no longer listed marked unavailable. One transaction.
   */
  replaceTools: async (serverId: string, tools: readonly DiscoveredTool[]): Promise<void> =>
    pool.transaction(async (tx) => {
      for (const tool of tools) {
        await tx.query(sql.unsafe`
          INSERT INTO tool_server_tools (id, server_id, name, exposed_name, description, input_schema)
          VALUES (${ulid()}, ${serverId}, ${tool.name}, ${tool.exposedName}, ${tool.description}, ${sql.jsonb(tool.inputSchema as never)})
          ON CONFLICT (server_id, name) DO UPDATE SET
            exposed_name = EXCLUDED.exposed_name, description = EXCLUDED.description, input_schema = EXCLUDED.input_schema,
            available = true,
            updated_at = CASE WHEN tool_server_tools.available
                               AND tool_server_tools.exposed_name = EXCLUDED.exposed_name
                               AND tool_server_tools.description IS NOT DISTINCT FROM EXCLUDED.description
                               AND tool_server_tools.input_schema = EXCLUDED.input_schema
                              THEN tool_server_tools.updated_at ELSE now() END`);
      }
      const listed = tools.map((tool) => tool.name);
      await tx.query(sql.unsafe`
        UPDATE tool_server_tools SET available = false, updated_at = now()
        WHERE server_id = ${serverId} AND available AND NOT (name = ANY(${sql.array(listed, 'text')}))`);
      await tx.query(sql.unsafe`UPDATE tool_servers SET tools_refreshed_at = now() WHERE id = ${serverId}`);
    }),

  /** The user's servers' tools (of the given servers, or all). */
  listTools: async (userId: string, serverIds?: readonly string[]): Promise<readonly ServerToolRow[]> =>
    pool.any(sql.type(ServerToolRow)`
      SELECT ${TOOL_COLUMNS} FROM tool_server_tools t JOIN tool_servers s ON s.id = t.server_id
      WHERE s.user_id = ${userId}
        ${serverIds === undefined ? sql.fragment`` : sql.fragment`AND t.server_id = ANY(${sql.array([...serverIds], 'text')})`}
      ORDER BY s.created_at, s.id, t.name`),

  setToolEnabled: async (userId: string, toolId: string, enabled: boolean): Promise<boolean> =>
    (
      await pool.query(sql.unsafe`
        UPDATE tool_server_tools t SET enabled = ${enabled}, updated_at = now()
        FROM tool_servers s
        WHERE t.id = ${toolId} AND s.id = t.server_id AND s.user_id = ${userId}`)
    ).rowCount > 0,

  /** Built-in tools the user switched off. */
  disabledBuiltins: async (userId: string): Promise<ReadonlySet<string>> =>
    new Set(
      await pool.anyFirst(sql.type(z.object({ tool: z.string() }))`
        SELECT tool FROM user_builtin_tools WHERE user_id = ${userId} AND NOT enabled`),
    ),

  setBuiltinEnabled: async (userId: string, tool: string, enabled: boolean): Promise<void> => {
    await pool.query(sql.unsafe`
      INSERT INTO user_builtin_tools (user_id, tool, enabled) VALUES (${userId}, ${tool}, ${enabled})
      ON CONFLICT (user_id, tool) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()`);
  },

  /** Calls, errors, mean duration and the last call of each named tool in the user's runs (the tool_calls records). */
  toolCallStats: async (userId: string, tools: readonly string[]): Promise<ReadonlyMap<string, ToolCallStats>> => {
    if (tools.length === 0) return new Map();
    const rows = await pool.any(sql.type(ToolCallStats)`
      SELECT c.tool,
             count(*)::int AS total_calls,
             count(c.error)::int AS total_errors,
             avg(c.duration_ms)::float8 AS avg_duration_ms,
             max(c.started_at) AS last_called,
             (array_agg(c.error ORDER BY c.started_at DESC) FILTER (WHERE c.error IS NOT NULL))[1] AS last_error
      FROM tool_calls c JOIN workflow_runs r ON r.id = c.run_id
      WHERE r.user_id = ${userId} AND c.tool = ANY(${sql.array([...tools], 'text')})
      GROUP BY c.tool`);
    return new Map(rows.map((row) => [row.tool, row]));
  },

  /**
   * What a run of the user is offered besides the built-ins: enabled tools still listed by
   * enabled servers that have not failed `max_failures` checks in a row.
   */
  offeredTools: async (userId: string): Promise<readonly OfferedToolRow[]> =>
    pool.any(sql.type(OfferedToolRow)`
      SELECT t.id AS tool_id, t.name, t.exposed_name, t.description, t.input_schema, t.updated_at AS tool_updated_at,
             s.id AS server_id, s.name AS server_name, s.base_url, s.transport_type, s.headers, s.timeout_seconds,
             s.updated_at AS server_updated_at
      FROM tool_server_tools t JOIN tool_servers s ON s.id = t.server_id
      WHERE s.user_id = ${userId} AND s.enabled AND t.enabled AND t.available AND s.consecutive_failures < s.max_failures
      ORDER BY s.created_at, s.id, t.name`),
});
