/**
 * Route schemas of `/api/v1/toolservers`, after the contract's `ToolServerCreate`,
 * `ToolServerUpdate`, `ToolServerResponse`, `ServerToolResponse` and friends
 * (`openapi-full.json`), inlined in the routes. Fields this service adds are marked so.
 */

const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

/** Where a value of `headers` is kept secret in every answer; sent back unchanged in an update it keeps the stored value. */
export const REDACTED_HEADER_VALUE = '********';

const OAuthConfig = {
  type: 'object',
  required: ['client_id', 'client_secret', 'token_url'],
  properties: {
    client_id: { type: 'string' },
    client_secret: { type: 'string' },
    token_url: { type: 'string', minLength: 1, maxLength: 2083 },
    scope: nullable({ type: 'string' }),
  },
} as const;

const headers = {
  ...nullable({ type: 'object', additionalProperties: { type: 'string', maxLength: 8192 }, maxProperties: 32 }),
  title: 'Headers',
  description: `Additional HTTP headers sent to the server (e.g. Authorization). Answers show each value as "${REDACTED_HEADER_VALUE}".`,
} as const;

const TRANSPORT_PATTERN = '^(http|sse|stdio|websocket)$';

export const ToolServerCreateSchema = {
  type: 'object',
  required: ['name', 'display_name'],
  properties: {
    name: {
      type: 'string',
      minLength: 1,
      maxLength: 100,
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      description: 'Server name: letters, digits, "_", "." or "-"; the prefix of the tool names the model sees',
    },
    display_name: { type: 'string', minLength: 1, maxLength: 200 },
    description: nullable({ type: 'string', maxLength: 10_000 }),
    base_url: { ...nullable({ type: 'string', minLength: 1, maxLength: 2083 }), description: 'The MCP endpoint (http or https)' },
    transport_type: {
      type: 'string',
      pattern: TRANSPORT_PATTERN,
      default: 'http',
      description: 'http (Streamable HTTP, falling back to HTTP+SSE when the server asks for it) or sse; stdio and websocket are refused',
    },
    oauth_config: { ...nullable(OAuthConfig), description: 'Not supported: send a bearer token in headers instead' },
    headers,
    timeout: { type: 'integer', minimum: 5, maximum: 300, default: 30 },
    auto_start: { type: 'boolean', default: true },
    auto_update: { type: 'boolean', default: true },
    max_failures: { type: 'integer', minimum: 1, maximum: 10, default: 3 },
  },
} as const;

export type ToolServerCreateBody = {
  name: string;
  display_name: string;
  description?: string | null;
  base_url?: string | null;
  transport_type: string;
  oauth_config?: unknown;
  headers?: Record<string, string> | null;
  timeout: number;
  auto_start: boolean;
  auto_update: boolean;
  max_failures: number;
};

export const ToolServerUpdateSchema = {
  type: 'object',
  properties: {
    display_name: nullable({ type: 'string', minLength: 1, maxLength: 200 }),
    description: nullable({ type: 'string', maxLength: 10_000 }),
    base_url: nullable({ type: 'string', minLength: 1, maxLength: 2083 }),
    transport_type: nullable({ type: 'string', pattern: TRANSPORT_PATTERN }),
    oauth_config: nullable(OAuthConfig),
    headers,
    timeout: nullable({ type: 'integer', minimum: 5, maximum: 300 }),
    auto_start: nullable({ type: 'boolean' }),
    auto_update: nullable({ type: 'boolean' }),
    max_failures: nullable({ type: 'integer', minimum: 1, maximum: 10 }),
  },
} as const;

export type ToolServerUpdateBody = {
  display_name?: string | null;
  description?: string | null;
  base_url?: string | null;
  transport_type?: string | null;
  oauth_config?: unknown;
  headers?: Record<string, string> | null;
  timeout?: number | null;
  auto_start?: boolean | null;
  auto_update?: boolean | null;
  max_failures?: number | null;
};

const toolProperties = {
  id: { type: 'string' },
  name: { type: 'string', description: "The tool's own name on its server" },
  display_name: { type: 'string' },
  description: nullable({ type: 'string' }),
  args_schema: nullable({ type: 'object', additionalProperties: true }),
  bypass_when_unavailable: { type: 'boolean' },
  server_id: { type: 'string' },
  status: { type: 'string', enum: ['enabled', 'disabled', 'unavailable', 'error'] },
  is_available: { type: 'boolean', description: 'Offered to runs now (enabled, listed by its server, server enabled and reachable)' },
  total_calls: { type: 'integer', description: "Calls in the user's runs (tool_calls records)" },
  total_errors: { type: 'integer' },
  last_called: nullable(dateTime),
  last_error: nullable({ type: 'string' }),
  avg_response_time_ms: nullable({ type: 'number' }),
  created_at: dateTime,
  updated_at: dateTime,
  // This service's additions.
  server_name: { type: 'string', description: "The server's name (this service's addition)" },
  function_name: { type: 'string', description: 'The name the model is offered and tool_calls records (this service’s addition)' },
} as const;

export const ServerToolResponseSchema = {
  type: 'object',
  required: [
    'name',
    'display_name',
    'id',
    'server_id',
    'status',
    'is_available',
    'total_calls',
    'total_errors',
    'created_at',
    'updated_at',
  ],
  properties: toolProperties,
} as const;

export const ToolServerResponseSchema = {
  type: 'object',
  required: ['name', 'display_name', 'id', 'status', 'is_builtin', 'consecutive_failures', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    display_name: { type: 'string' },
    description: nullable({ type: 'string' }),
    base_url: { ...nullable({ type: 'string' }), description: 'null for the built-in server' },
    transport_type: { type: 'string' },
    oauth_config: { type: 'null' },
    headers: {
      ...nullable({ type: 'object', additionalProperties: { type: 'string' } }),
      description: `Values shown as "${REDACTED_HEADER_VALUE}"`,
    },
    timeout: { type: 'integer' },
    auto_start: { type: 'boolean' },
    auto_update: { type: 'boolean' },
    max_failures: { type: 'integer' },
    status: { type: 'string', enum: ['enabled', 'disabled', 'error', 'starting', 'stopping'] },
    is_builtin: { type: 'boolean' },
    last_health_check: { ...nullable(dateTime), description: 'When the server was last checked (a connection, tools/list or ping)' },
    last_startup_success: { ...nullable(dateTime), description: 'The last check that succeeded' },
    last_startup_error: { ...nullable({ type: 'string' }), description: 'The error of the last check, if it failed' },
    consecutive_failures: { type: 'integer' },
    created_at: dateTime,
    updated_at: dateTime,
    created_by: nullable({ type: 'string' }),
    tools: { type: 'array', items: ServerToolResponseSchema },
    // This service's additions.
    tools_count: { type: 'integer', description: 'Tools its last tools/list returned (this service’s addition)' },
    health: {
      type: 'object',
      description: 'The last health check (this service’s addition)',
      required: ['status', 'checked_at', 'latency_ms', 'error'],
      properties: {
        status: { type: 'string', enum: ['ok', 'error', 'unknown'] },
        checked_at: nullable(dateTime),
        latency_ms: nullable({ type: 'integer' }),
        error: nullable({ type: 'string' }),
      },
    },
  },
} as const;

export const OperationResponseSchema = {
  type: 'object',
  required: ['success', 'message'],
  properties: { success: { type: 'boolean' }, message: { type: 'string' } },
} as const;

export const DeleteResponseSchema = {
  type: 'object',
  required: ['message'],
  properties: { message: { type: 'string' } },
} as const;

export const ServerToolsResponseSchema = {
  type: 'object',
  required: ['tools', 'total_count', 'limit', 'offset'],
  properties: {
    tools: { type: 'array', items: ServerToolResponseSchema },
    total_count: { type: 'integer' },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
  },
} as const;

export const ToolServerHealthCheckSchema = {
  type: 'object',
  required: ['server_id', 'server_name', 'status', 'is_running', 'is_responsive', 'tools_count', 'last_check'],
  properties: {
    server_id: { type: 'string' },
    server_name: { type: 'string' },
    status: { type: 'string', enum: ['enabled', 'disabled', 'error', 'starting', 'stopping'] },
    is_running: { type: 'boolean' },
    is_responsive: { type: 'boolean' },
    tools_count: { type: 'integer' },
    last_check: dateTime,
    error_message: nullable({ type: 'string' }),
    latency_ms: { type: 'integer', description: 'Round trip of the check (this service’s addition)' },
  },
} as const;

export const RefreshResponseSchema = {
  type: 'object',
  required: ['success', 'message', 'server_id', 'tools_count', 'tools'],
  properties: {
    success: { type: 'boolean' },
    message: { type: 'string' },
    server_id: { type: 'string' },
    tools_count: { type: 'integer' },
    tools: { type: 'array', items: { type: 'string' }, description: "The tools' names as the server listed them" },
  },
} as const;

export const ServerParams = {
  type: 'object',
  required: ['server_id'],
  properties: { server_id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

export const ToolParams = {
  type: 'object',
  required: ['tool_id'],
  properties: { tool_id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;
