import { createHash } from 'node:crypto';
import { DynamicStructuredTool, type StructuredToolInterface } from '@langchain/core/tools';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { McpClientPool, McpServerTarget } from './mcp-client-pool.js';

/** Longest tool name OpenAI and Anthropic accept (`^[a-zA-Z0-9_-]{1,64}$`). */
const MAX_TOOL_NAME = 64;
const SEPARATOR = '__';

/**
 * The name the model is offered for a server's tool, and the one `tool_calls.tool`
 * records: `<server>__<tool>`. Built-in tools never hold `__`, so the two never collide;
 * server names are unique per user, so neither do two servers' tools. Where the plain
 * name would break the providers' rules (other characters, `__` inside the server
 * name, over 64 characters) it is cut and suffixed with a hash of the exact pair.
 */
export function exposedToolName(serverName: string, toolName: string): string {
  const plain = `${serverName}${SEPARATOR}${toolName}`;
  if (/^[A-Za-z0-9_-]+$/.test(plain) && !serverName.includes(SEPARATOR) && plain.length <= MAX_TOOL_NAME) return plain;
  const hash = createHash('sha256').update(`${serverName}\u0000${toolName}`).digest('hex').slice(0, 8);
  const safe = plain.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, MAX_TOOL_NAME - hash.length - 1);
  return `${safe}_${hash}`;
}

/** The JSON Schema of a tool's arguments: always an object schema (MCP requires one). */
export type ToolInputSchema = { type: 'object'; properties?: Record<string, unknown>; required?: string[]; [key: string]: unknown };

export type McpToolSpec = {
  readonly server: McpServerTarget;
  /** The MCP tool's own name. */
  readonly name: string;
  readonly exposedName: string;
  readonly description: string | null;
  readonly inputSchema: ToolInputSchema;
};

/** The text a tool result gives the model: its text parts, other parts named, structured content as JSON. */
export function resultText(result: CallToolResult): string {
  const parts = result.content.map((part) => {
    switch (part.type) {
      case 'text':
        return part.text;
      case 'image':
      case 'audio':
        return `[${part.type} ${part.mimeType}]`;
      case 'resource':
        return 'text' in part.resource ? part.resource.text : `[resource ${part.resource.uri}]`;
      case 'resource_link':
        return `[resource ${part.uri}]`;
      default:
        return JSON.stringify(part);
    }
  });
  if (parts.length === 0 && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return parts.join('\n');
}

/** A tool the server ran and reported failed (`isError`): its text is the error the model reads. */
export class McpToolError extends Error {
  public override readonly name = 'McpToolError';
}

/**
 * A LangChain tool that calls an MCP server's tool through the pool. It is invoked by
 * the graph's tools node like a built-in one, so its call is an `execute_tool` span and a
 * `tool_calls` row the same way; a failed call (the tool's `isError`, a JSON-RPC error,
 * a timeout, an unreachable server) throws, which the tools node turns into an error
 * tool message for the model.
 */
export function createMcpTool(spec: McpToolSpec, pool: McpClientPool): StructuredToolInterface {
  return new DynamicStructuredTool({
    name: spec.exposedName,
    description: spec.description ?? `${spec.name} (MCP server ${spec.server.name})`,
    schema: spec.inputSchema,
    metadata: { tool_server_id: spec.server.id, tool_server_name: spec.server.name, mcp_tool: spec.name },
    func: async (input: unknown, _runManager, config) => {
      const args = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
      const result = await pool.callTool(spec.server, spec.name, args, config?.signal);
      const text = resultText(result);
      if (result.isError === true) throw new McpToolError(text === '' ? `tool ${spec.name} failed` : text);
      return text;
    },
  });
}
