import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/**
 * A real MCP server from the SDK on loopback, with four tools:
 * `echo {text}` → the text, `add {a, b}` → the sum, `slow {ms}` → "done" after ms,
 * `fail` → throws (an `isError` result). `transport: 'streamable'` serves Streamable
 * HTTP (stateful sessions) at /mcp; `'sse'` serves only the older HTTP+SSE transport
 * (GET /mcp opens the stream, POST /messages) and answers a Streamable HTTP POST 405.
 */
export type TestMcpServer = {
  readonly url: string;
  readonly port: number;
  /** MCP initialize requests received (one per client connection). */
  readonly initializations: () => number;
  /** Tool calls received, in order: `name(args-json)`. */
  readonly toolCalls: string[];
  /** The Authorization header of every HTTP request received. */
  readonly authorizations: (string | undefined)[];
  /** Stops it: open connections are cut, later connections refused. */
  readonly close: () => Promise<void>;
};

const buildServer = (calls: string[]): McpServer => {
  const server = new McpServer({ name: 'chatter-test-mcp', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echoes the text back', inputSchema: { text: z.string() } }, async ({ text }) => {
    calls.push(`echo(${JSON.stringify({ text })})`);
    return { content: [{ type: 'text', text }] };
  });
  server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
    calls.push(`add(${JSON.stringify({ a, b })})`);
    return { content: [{ type: 'text', text: String(a + b) }] };
  });
  server.registerTool('slow', { description: 'Answers after ms milliseconds', inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
    calls.push(`slow(${JSON.stringify({ ms })})`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      extra.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return { content: [{ type: 'text', text: 'done' }] };
  });
  server.registerTool('fail', { description: 'Always fails', inputSchema: {} }, async () => {
    calls.push('fail({})');
    throw new Error('the fail tool failed on purpose');
  });
  return server;
};

const isInitialize = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && (body as { method?: unknown }).method === 'initialize';

const readJson = async (request: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
};

export const startMcpServer = async (options: { transport?: 'streamable' | 'sse'; port?: number } = {}): Promise<TestMcpServer> => {
  const kind = options.transport ?? 'streamable';
  const toolCalls: string[] = [];
  const authorizations: (string | undefined)[] = [];
  let initializations = 0;
  const streamable = new Map<string, StreamableHTTPServerTransport>();
  const sse = new Map<string, SSEServerTransport>();
  const servers: McpServer[] = [];

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    authorizations.push(request.headers.authorization);
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (kind === 'sse') {
      if (request.method === 'GET' && path === '/mcp') {
        const transport = new SSEServerTransport('/messages', response);
        sse.set(transport.sessionId, transport);
        transport.onclose = () => sse.delete(transport.sessionId);
        const server = buildServer(toolCalls);
        servers.push(server);
        await server.connect(transport);
        return;
      }
      if (request.method === 'POST' && path === '/messages') {
        const sessionId = new URL(request.url ?? '/', 'http://localhost').searchParams.get('sessionId') ?? '';
        const transport = sse.get(sessionId);
        if (transport === undefined) {
          response.writeHead(404).end('unknown session');
          return;
        }
        const body = await readJson(request);
        if (isInitialize(body)) initializations += 1;
        await transport.handlePostMessage(request, response, body);
        return;
      }
      response.writeHead(405, { 'content-type': 'application/json' }).end('{"error":"use the HTTP+SSE transport"}');
      return;
    }
    if (path !== '/mcp') {
      response.writeHead(404).end();
      return;
    }
    const body = request.method === 'POST' ? await readJson(request) : undefined;
    const sessionId = request.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? streamable.get(sessionId) : undefined;
    if (transport === undefined) {
      if (typeof sessionId === 'string' || !isInitialize(body)) {
        response
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      initializations += 1;
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        onsessioninitialized: (id) => void streamable.set(id, created),
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) streamable.delete(created.sessionId);
      };
      const server = buildServer(toolCalls);
      servers.push(server);
      await server.connect(created);
      transport = created;
    }
    await transport.handleRequest(request, response, body);
  };

  const http: Server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    initializations: () => initializations,
    toolCalls,
    authorizations,
    close: async () => {
      await Promise.all(servers.map((server) => server.close().catch(() => undefined)));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
};
