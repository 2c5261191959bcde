import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError, RequestValidationError, type ValidationItem } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT4_MAX } from '../http/schemas/common-schemas.js';
import {
  DeleteResponseSchema,
  OperationResponseSchema,
  REDACTED_HEADER_VALUE,
  RefreshResponseSchema,
  ServerParams,
  ServerToolResponseSchema,
  ServerToolsResponseSchema,
  ToolParams,
  ToolServerCreateSchema,
  ToolServerHealthCheckSchema,
  ToolServerResponseSchema,
  ToolServerUpdateSchema,
  type ToolServerCreateBody,
  type ToolServerUpdateBody,
} from '../http/schemas/tool-server-schemas.js';
import { DuplicateToolServerNameError, type ToolServerRow } from '../repositories/tool-servers-repository.js';
import type { Services } from '../services.js';
import { createToolRegistry } from '../tools/tool-registry.js';
import {
  BUILTIN_SERVER_ID,
  builtinServerView,
  builtinToolOf,
  builtinToolViews,
  remoteServerView,
  remoteToolView,
  type ServerView,
} from '../tools/tool-server-views.js';

type ServerParams = { server_id: string };
type ToolParams = { tool_id: string };

/** Headers the MCP transports set themselves. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks JSON Schema cannot make: an http(s) URL without credentials, a transport this service speaks, sane headers. */
const targetProblems = (
  body: {
    base_url?: string | null;
    transport_type?: string | null;
    oauth_config?: unknown;
    headers?: Record<string, string> | null;
  },
  baseUrlRequired: boolean,
): ValidationItem[] => {
  const problems: ValidationItem[] = [];
  if (body.base_url === undefined || body.base_url === null) {
    if (baseUrlRequired)
      problems.push({ loc: ['body', 'base_url'], msg: 'a remote tool server needs its MCP endpoint URL', type: 'missing' });
  } else {
    let url: URL | undefined;
    try {
      url = new URL(body.base_url);
    } catch {
      problems.push({ loc: ['body', 'base_url'], msg: 'must be an absolute URL', type: 'url_parsing' });
    }
    if (url !== undefined && url.protocol !== 'http:' && url.protocol !== 'https:') {
      problems.push({ loc: ['body', 'base_url'], msg: 'must be an http:// or https:// URL', type: 'url_scheme' });
    }
    if (url !== undefined && (url.username !== '' || url.password !== '')) {
      problems.push({
        loc: ['body', 'base_url'],
        msg: 'must not hold credentials: send them in headers (never shown again)',
        type: 'url_credentials',
      });
    }
  }
  if (body.transport_type === 'stdio' || body.transport_type === 'websocket') {
    problems.push({
      loc: ['body', 'transport_type'],
      msg: `${body.transport_type} is not supported: this service reaches MCP servers over HTTP (http, or sse for HTTP+SSE-only servers)`,
      type: 'transport_unsupported',
    });
  }
  if (body.oauth_config !== undefined && body.oauth_config !== null) {
    problems.push({
      loc: ['body', 'oauth_config'],
      msg: 'OAuth is not supported: send a bearer token in headers (Authorization)',
      type: 'oauth_unsupported',
    });
  }
  for (const [name, value] of Object.entries(body.headers ?? {})) {
    if (!HEADER_NAME.test(name))
      problems.push({ loc: ['body', 'headers', name], msg: 'is not a valid HTTP header name', type: 'header_name' });
    else if (RESERVED_HEADERS.has(name.toLowerCase())) {
      problems.push({
        loc: ['body', 'headers', name],
        msg: 'is set by the MCP transport and cannot be overridden',
        type: 'header_reserved',
      });
    }
    if (/[\r\n\0]/.test(value)) problems.push({ loc: ['body', 'headers', name], msg: 'must not hold line breaks', type: 'header_value' });
  }
  return problems;
};

const check = (problems: ValidationItem[]): void => {
  if (problems.length > 0) throw new RequestValidationError(problems);
};

const transportOf = (value: string | null | undefined): 'http' | 'sse' | undefined =>
  value === 'http' || value === 'sse' ? value : undefined;

const readOnly = () =>
  new HttpError(403, 'The built-in tool server is read-only: switch its tools on or off one by one', 'builtin_server_read_only');
const serverNotFound = () => new HttpError(404, 'Tool server not found', 'not_found');

/**
 * `/api/v1/toolservers`: the built-in tools as one read-only server, and each user's
 * remote MCP servers (another user's server or tool is 404). Lists answer from the
 * rows, with call figures from the tool_calls records; enable/disable/refresh/health
 * talk to the server through this instance's MCP connection.
 */
export const toolServerRoutes: FastifyPluginAsync<{ readonly services: Services }> = async (app, { services }) => {
  const { toolServers } = services;
  const { repository } = toolServers;
  const builtins = createToolRegistry();
  app.addHook('onRequest', app.authenticate);
  // The contract's operation ids: "<summary>_<path>_<method>" in snake case, as FastAPI makes them.
  app.addHook('onRoute', (options) => {
    const schema = options.schema as { summary?: string; operationId?: string } | undefined;
    const method = (Array.isArray(options.method) ? options.method[0] : options.method) as string;
    if (schema?.summary === undefined || schema.operationId !== undefined || method === 'HEAD') return;
    const path = options.url
      .replace(/:([A-Za-z_]+)/g, '{$1}')
      .replace(/[^A-Za-z0-9]/g, '_')
      .replace(/^_/, '');
    schema.operationId = `${schema.summary.toLowerCase().replace(/ /g, '_')}_${path}_${method.toLowerCase()}`;
  });

  const views = async (userId: string, servers: readonly ToolServerRow[], includeBuiltin: boolean): Promise<ServerView[]> => {
    const [tools, disabled] = await Promise.all([
      repository.listTools(
        userId,
        servers.map((server) => server.id),
      ),
      repository.disabledBuiltins(userId),
    ]);
    const calls = await repository.toolCallStats(userId, [...builtins.names(), ...tools.map((tool) => tool.exposed_name)]);
    const remote = servers.map((server) =>
      remoteServerView(
        server,
        tools.filter((tool) => tool.server_id === server.id).map((tool) => remoteToolView(server, tool, calls.get(tool.exposed_name))),
      ),
    );
    return includeBuiltin ? [builtinServerView(builtinToolViews(builtins, disabled, calls)), ...remote] : remote;
  };

  const serverOf = async (request: FastifyRequest<{ Params: ServerParams }>): Promise<ToolServerRow> => {
    const server = await repository.findServer(request.user.id, request.params.server_id);
    if (server === null) throw serverNotFound();
    return server;
  };

  const viewOf = async (userId: string, serverId: string): Promise<ServerView> => {
    await toolServers.settled();
    const server = await repository.findServer(userId, serverId);
    if (server === null) throw serverNotFound();
    const [view] = await views(userId, [server], false);
    return view!;
  };

  const route = (summary: string, schema: Record<string, unknown>) => ({
    schema: { tags: ['Tool Servers'], summary, security: bearerSecurity, ...schema },
  });

  app.get(
    '/tools/all',
    route('List All Tools', { response: { 200: { type: 'array', items: ServerToolResponseSchema }, ...errorResponses(401) } }),
    async (request) => {
      const servers = await repository.listServers(request.user.id);
      return (await views(request.user.id, servers, true)).flatMap((server) => server.tools);
    },
  );

  app.get<{ Querystring: { status?: string; include_builtin: boolean } }>(
    '/servers',
    route('List Tool Servers', {
      querystring: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['enabled', 'disabled', 'error', 'starting', 'stopping'] },
          include_builtin: { type: 'boolean', default: true },
        },
      },
      response: { 200: { type: 'array', items: ToolServerResponseSchema }, ...errorResponses(401) },
    }),
    async (request) => {
      const servers = await repository.listServers(request.user.id);
      const all = await views(request.user.id, servers, request.query.include_builtin);
      return request.query.status === undefined ? all : all.filter((server) => server.status === request.query.status);
    },
  );

  app.post<{ Body: ToolServerCreateBody }>(
    '/servers',
    route('Create Tool Server', {
      body: ToolServerCreateSchema,
      response: { 201: ToolServerResponseSchema, ...errorResponses(401, 409, 413) },
    }),
    async (request, reply) => {
      const { body } = request;
      check(targetProblems(body, true));
      if (body.name === BUILTIN_SERVER_ID) {
        throw new RequestValidationError([
          { loc: ['body', 'name'], msg: `"${BUILTIN_SERVER_ID}" is the built-in server's name`, type: 'name_reserved' },
        ]);
      }
      const headers = body.headers ?? {};
      if (Object.values(headers).includes(REDACTED_HEADER_VALUE)) {
        throw new RequestValidationError([
          {
            loc: ['body', 'headers'],
            msg: `"${REDACTED_HEADER_VALUE}" stands for a stored value; a new server has none`,
            type: 'header_value',
          },
        ]);
      }
      let server: ToolServerRow;
      try {
        server = await repository.createServer(request.user.id, {
          name: body.name,
          displayName: body.display_name,
          description: body.description ?? null,
          baseUrl: body.base_url!,
          transportType: transportOf(body.transport_type) ?? 'http',
          headers,
          timeoutSeconds: body.timeout,
          autoStart: body.auto_start,
          autoUpdate: body.auto_update,
          maxFailures: body.max_failures,
        });
      } catch (error) {
        if (error instanceof DuplicateToolServerNameError) throw new HttpError(409, error.message, 'tool_server_exists');
        throw error;
      }
      // Connects and lists its tools now; an unreachable server is still registered (its health says why).
      if (server.auto_start) await toolServers.refreshTools(server);
      void reply.status(201);
      return viewOf(request.user.id, server.id);
    },
  );

  app.get<{ Params: ServerParams }>(
    '/servers/:server_id',
    route('Get Tool Server', { params: ServerParams, response: { 200: ToolServerResponseSchema, ...errorResponses(401, 404) } }),
    async (request) => {
      if (request.params.server_id === BUILTIN_SERVER_ID) return (await views(request.user.id, [], true))[0];
      return viewOf(request.user.id, (await serverOf(request)).id);
    },
  );

  app.put<{ Params: ServerParams; Body: ToolServerUpdateBody }>(
    '/servers/:server_id',
    route('Update Tool Server', {
      params: ServerParams,
      body: ToolServerUpdateSchema,
      response: { 200: ToolServerResponseSchema, ...errorResponses(401, 403, 404, 413) },
    }),
    async (request) => {
      if (request.params.server_id === BUILTIN_SERVER_ID) throw readOnly();
      const { body } = request;
      check(targetProblems(body, false));
      const current = await serverOf(request);
      let headers: Record<string, string> | undefined;
      if (body.headers !== undefined) {
        // The redaction marker sent back (an edit form showing what it was given) keeps the stored value.
        headers = {};
        for (const [name, value] of Object.entries(body.headers ?? {})) {
          if (value !== REDACTED_HEADER_VALUE) headers[name] = value;
          else if (current.headers[name] !== undefined) headers[name] = current.headers[name];
          else
            check([
              {
                loc: ['body', 'headers', name],
                msg: `"${REDACTED_HEADER_VALUE}" stands for a stored value; this header has none`,
                type: 'header_value',
              },
            ]);
        }
      }
      const updated = await repository.updateServer(request.user.id, current.id, {
        ...(body.display_name == null ? {} : { displayName: body.display_name }),
        ...(body.description === undefined ? {} : { description: body.description }),
        ...(body.base_url == null ? {} : { baseUrl: body.base_url }),
        ...(transportOf(body.transport_type) === undefined ? {} : { transportType: transportOf(body.transport_type)! }),
        ...(headers === undefined ? {} : { headers }),
        ...(body.timeout == null ? {} : { timeoutSeconds: body.timeout }),
        ...(body.auto_start == null ? {} : { autoStart: body.auto_start }),
        ...(body.auto_update == null ? {} : { autoUpdate: body.auto_update }),
        ...(body.max_failures == null ? {} : { maxFailures: body.max_failures }),
      });
      if (updated === null) throw serverNotFound();
      await toolServers.release(updated.id);
      return viewOf(request.user.id, updated.id);
    },
  );

  app.delete<{ Params: ServerParams }>(
    '/servers/:server_id',
    route('Delete Tool Server', { params: ServerParams, response: { 200: DeleteResponseSchema, ...errorResponses(401, 403, 404) } }),
    async (request) => {
      if (request.params.server_id === BUILTIN_SERVER_ID) throw readOnly();
      if (!(await repository.deleteServer(request.user.id, request.params.server_id))) throw serverNotFound();
      await toolServers.release(request.params.server_id);
      return { message: 'Tool server deleted' };
    },
  );

  for (const enabled of [true, false]) {
    app.post<{ Params: ServerParams }>(
      `/servers/:server_id/${enabled ? 'enable' : 'disable'}`,
      route(`${enabled ? 'Enable' : 'Disable'} Tool Server`, {
        params: ServerParams,
        response: { 200: OperationResponseSchema, ...errorResponses(401, 403, 404) },
      }),
      async (request) => {
        if (request.params.server_id === BUILTIN_SERVER_ID) throw readOnly();
        const server = await repository.setServerEnabled(request.user.id, request.params.server_id, enabled);
        if (server === null) throw serverNotFound();
        if (!enabled) {
          await toolServers.release(server.id);
          return { success: true, message: `Tool server ${server.name} disabled: its tools are no longer offered` };
        }
        // Enabling checks the server again (and lists its tools when it auto-updates).
        const outcome = server.auto_update ? await toolServers.refreshTools(server) : await toolServers.check(server);
        await toolServers.settled();
        return {
          success: true,
          message: outcome.ok
            ? `Tool server ${server.name} enabled`
            : `Tool server ${server.name} enabled, but it is unreachable: ${'error' in outcome ? outcome.error : ''}`,
        };
      },
    );
  }

  app.post<{ Params: ServerParams }>(
    '/servers/:server_id/refresh-tools',
    route('Refresh Server Tools', {
      description:
        'Lists the server’s tools through MCP tools/list and stores them: new tools enabled, tools it no longer lists unavailable. 502 when the server cannot be reached.',
      params: ServerParams,
      response: { 200: RefreshResponseSchema, ...errorResponses(401, 404), 502: { $ref: 'ErrorResponse#' } },
    }),
    async (request) => {
      if (request.params.server_id === BUILTIN_SERVER_ID) {
        return {
          success: true,
          message: 'Built-in tools are always current',
          server_id: BUILTIN_SERVER_ID,
          tools_count: builtins.names().length,
          tools: builtins.names(),
        };
      }
      const server = await serverOf(request);
      const outcome = await toolServers.refreshTools(server);
      await toolServers.settled();
      if (!outcome.ok) throw new HttpError(502, outcome.error, 'tool_server_unreachable');
      return {
        success: true,
        message: `Listed ${outcome.tools.length} tools`,
        server_id: server.id,
        tools_count: outcome.tools.length,
        tools: outcome.tools,
      };
    },
  );

  app.get<{ Params: ServerParams; Querystring: { limit: number; offset: number } }>(
    '/servers/:server_id/tools',
    route('Get Server Tools', {
      params: ServerParams,
      querystring: {
        type: 'object',
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          offset: { type: 'integer', minimum: 0, maximum: INT4_MAX, default: 0 },
        },
      },
      response: { 200: ServerToolsResponseSchema, ...errorResponses(401, 404) },
    }),
    async (request) => {
      const view =
        request.params.server_id === BUILTIN_SERVER_ID
          ? (await views(request.user.id, [], true))[0]!
          : await viewOf(request.user.id, (await serverOf(request)).id);
      const { limit, offset } = request.query;
      return { tools: view.tools.slice(offset, offset + limit), total_count: view.tools.length, limit, offset };
    },
  );

  app.get<{ Params: ServerParams }>(
    '/servers/:server_id/health',
    route('Check Server Health', {
      description: 'Checks the server now (connection and MCP ping) and records the outcome as its health.',
      params: ServerParams,
      response: { 200: ToolServerHealthCheckSchema, ...errorResponses(401, 404) },
    }),
    async (request) => {
      if (request.params.server_id === BUILTIN_SERVER_ID) {
        const now = new Date().toISOString();
        return {
          server_id: BUILTIN_SERVER_ID,
          server_name: BUILTIN_SERVER_ID,
          status: 'enabled',
          is_running: true,
          is_responsive: true,
          tools_count: builtins.names().length,
          last_check: now,
          error_message: null,
          latency_ms: 0,
        };
      }
      const server = await serverOf(request);
      const health = await toolServers.check(server);
      const view = await viewOf(request.user.id, server.id);
      return {
        server_id: server.id,
        server_name: server.name,
        status: view.status,
        is_running: server.enabled,
        is_responsive: health.ok,
        tools_count: view.tools_count,
        last_check: health.at.toISOString(),
        error_message: health.error,
        latency_ms: Math.round(health.latencyMs),
      };
    },
  );

  for (const enabled of [true, false]) {
    app.post<{ Params: ToolParams }>(
      `/tools/:tool_id/${enabled ? 'enable' : 'disable'}`,
      route(`${enabled ? 'Enable' : 'Disable'} Tool`, {
        description: 'Switches a tool on or off for the caller’s runs (built-in tools too, per user).',
        params: ToolParams,
        response: { 200: OperationResponseSchema, ...errorResponses(401, 404) },
      }),
      async (request) => {
        const builtin = builtinToolOf(request.params.tool_id);
        if (builtin !== undefined) await repository.setBuiltinEnabled(request.user.id, builtin, enabled);
        else if (!(await repository.setToolEnabled(request.user.id, request.params.tool_id, enabled))) {
          throw new HttpError(404, 'Tool not found', 'not_found');
        }
        return { success: true, message: `Tool ${enabled ? 'enabled' : 'disabled'}` };
      },
    );
  }
};
