import { z } from 'zod';
import type { ServerToolRow, ToolCallStats, ToolServerRow } from '../repositories/tool-servers-repository.js';
import { REDACTED_HEADER_VALUE } from '../http/schemas/tool-server-schemas.js';
import { BUILTIN_TOOL_NAMES, type ToolRegistry } from './tool-registry.js';

/** A built-in tool's zod schema as JSON Schema (what a provider is sent); null if it has none. */
const argsSchemaOf = (schema: unknown): Record<string, unknown> | null => {
  if (!(schema instanceof z.ZodType)) return null;
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema) as Record<string, unknown>;
  return json;
};

/** The id of the built-in server and the prefix of its tools' ids. */
export const BUILTIN_SERVER_ID = 'builtin';
const BUILTIN_TOOL_PREFIX = 'builtin-';

export const builtinToolId = (name: string): string => `${BUILTIN_TOOL_PREFIX}${name}`;

/** The built-in tool an id names, or undefined. */
export const builtinToolOf = (id: string): string | undefined => {
  if (!id.startsWith(BUILTIN_TOOL_PREFIX)) return undefined;
  const name = id.slice(BUILTIN_TOOL_PREFIX.length);
  return (BUILTIN_TOOL_NAMES as readonly string[]).includes(name) ? name : undefined;
};

/** When this process started: the built-in server's creation and last check. */
const STARTED_AT = new Date().toISOString();

const stats = (calls: ToolCallStats | undefined) => ({
  total_calls: calls?.total_calls ?? 0,
  total_errors: calls?.total_errors ?? 0,
  last_called: calls?.last_called ?? null,
  last_error: calls?.last_error ?? null,
  avg_response_time_ms: calls?.avg_duration_ms ?? null,
});

const serverStatus = (server: ToolServerRow): 'enabled' | 'disabled' | 'error' =>
  !server.enabled ? 'disabled' : server.last_health_ok === false ? 'error' : 'enabled';

/** The server's tools are offered to runs (the same rule as the repository's offeredTools). */
const offers = (server: ToolServerRow): boolean => server.enabled && server.consecutive_failures < server.max_failures;

/** One tool as the contract's ServerToolResponse (plus server_name and function_name). */
export type ToolView = {
  id: string;
  name: string;
  display_name: string;
  description: string | null;
  args_schema: Record<string, unknown> | null;
  bypass_when_unavailable: boolean;
  server_id: string;
  server_name: string;
  function_name: string;
  status: 'enabled' | 'disabled' | 'unavailable' | 'error';
  is_available: boolean;
  total_calls: number;
  total_errors: number;
  last_called: string | null;
  last_error: string | null;
  avg_response_time_ms: number | null;
  created_at: string;
  updated_at: string;
};

export const remoteToolView = (server: ToolServerRow, tool: ServerToolRow, calls: ToolCallStats | undefined): ToolView => ({
  id: tool.id,
  name: tool.name,
  display_name: tool.name,
  description: tool.description,
  args_schema: tool.input_schema,
  bypass_when_unavailable: false,
  server_id: server.id,
  server_name: server.name,
  function_name: tool.exposed_name,
  status: !tool.enabled ? 'disabled' : !tool.available ? 'unavailable' : server.last_health_ok === false ? 'error' : 'enabled',
  is_available: tool.enabled && tool.available && offers(server),
  ...stats(calls),
  created_at: tool.created_at,
  updated_at: tool.updated_at,
});

export const builtinToolViews = (
  registry: ToolRegistry,
  disabled: ReadonlySet<string>,
  calls: ReadonlyMap<string, ToolCallStats>,
): ToolView[] =>
  registry.list().map((tool): ToolView => {
    const enabled = !disabled.has(tool.name);
    return {
      id: builtinToolId(tool.name),
      name: tool.name,
      display_name: tool.name,
      description: tool.description,
      args_schema: argsSchemaOf(tool.schema),
      bypass_when_unavailable: false,
      server_id: BUILTIN_SERVER_ID,
      server_name: BUILTIN_SERVER_ID,
      function_name: tool.name,
      status: enabled ? 'enabled' : 'disabled',
      is_available: enabled,
      ...stats(calls.get(tool.name)),
      created_at: STARTED_AT,
      updated_at: STARTED_AT,
    };
  });

const redacted = (headers: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.keys(headers).map((name) => [name, REDACTED_HEADER_VALUE]));

export const remoteServerView = (server: ToolServerRow, tools: ToolView[]) => ({
  id: server.id,
  name: server.name,
  display_name: server.display_name,
  description: server.description,
  base_url: server.base_url,
  transport_type: server.transport_type,
  oauth_config: null,
  headers: redacted(server.headers),
  timeout: server.timeout_seconds,
  auto_start: server.auto_start,
  auto_update: server.auto_update,
  max_failures: server.max_failures,
  status: serverStatus(server),
  is_builtin: false,
  last_health_check: server.last_health_check,
  last_startup_success: server.last_success_at,
  last_startup_error: server.last_health_ok === false ? server.last_health_error : null,
  consecutive_failures: server.consecutive_failures,
  created_at: server.created_at,
  updated_at: server.updated_at,
  created_by: server.user_id,
  tools,
  tools_count: tools.filter((tool) => tool.status !== 'unavailable').length,
  health: {
    status: server.last_health_ok === null ? 'unknown' : server.last_health_ok ? 'ok' : 'error',
    checked_at: server.last_health_check,
    latency_ms: server.last_health_latency_ms,
    error: server.last_health_ok === false ? server.last_health_error : null,
  },
});

export const builtinServerView = (tools: ToolView[]) => ({
  id: BUILTIN_SERVER_ID,
  name: BUILTIN_SERVER_ID,
  display_name: 'Built-in tools',
  description: 'Tools that run inside the service: calculator and current_time. Read-only; each tool can be switched off per user.',
  base_url: null,
  transport_type: 'http',
  oauth_config: null,
  headers: null,
  timeout: 30,
  auto_start: true,
  auto_update: false,
  max_failures: 3,
  status: 'enabled',
  is_builtin: true,
  last_health_check: new Date().toISOString(),
  last_startup_success: STARTED_AT,
  last_startup_error: null,
  consecutive_failures: 0,
  created_at: STARTED_AT,
  updated_at: STARTED_AT,
  created_by: null,
  tools,
  tools_count: tools.length,
  health: { status: 'ok', checked_at: new Date().toISOString(), latency_ms: 0, error: null },
});

export type ServerView = ReturnType<typeof remoteServerView> | ReturnType<typeof builtinServerView>;
