import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';
import { builderEdge, builderNode, toolLoopGraph } from '../helpers/workflow-graphs.js';

// /api/v1/workflows/definitions and /templates through the whole service (app, chat
// service, runtime, span pipeline, writer) on a real database with the scripted model.
// Every JSON body is checked against the original contract's schema.

let api: ChatApi;
let alice: RegisteredUser;
let bob: RegisteredUser;

beforeAll(async () => {
  api = await createChatApi({
    DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test',
    CHAT_RATE_LIMIT_PER_MINUTE: '1000',
    CHAT_RATE_LIMIT_PER_HOUR: '1000',
  });
  alice = await registerUser(api.app);
  bob = await registerUser(api.app);
});
afterAll(async () => {
  await api.close();
});

const conforms = (name: string, body: unknown): void => {
  if (fullContractMissing !== undefined) return;
  expect(fullContractErrors(name, body), name).toEqual([]);
};

type Definition = { id: string; name: string; version: number; owner_id: string; nodes: unknown[]; edges: unknown[] };
type Problem = { loc: (string | number)[]; msg: string; type: string };

const create = async (user: RegisteredUser, body: Record<string, unknown>) => {
  const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/definitions', payload: body });
  expect(response.statusCode, response.body).toBe(200);
  conforms('WorkflowDefinitionResponse', response.json());
  return response.json<Definition>();
};

const counts = async () =>
  api.db.pool.one(sql.type(z.object({ definitions: z.number(), templates: z.number(), runs: z.number() }))`
    SELECT (SELECT count(*) FROM workflow_definitions)::int AS definitions,
           (SELECT count(*) FROM workflow_templates)::int AS templates,
           (SELECT count(*) FROM workflow_runs)::int AS runs`);

describe('workflow definitions', () => {
  it('creates, lists, reads, updates and deletes a definition of the builder\u2019s nodes and edges', async () => {
    const as = asUser(api.app, alice);
    const created = await create(alice, {
      name: 'Calculator loop',
      description: 'agent and tools',
      ...toolLoopGraph(['calculator']),
      tags: ['math'],
    });
    expect(created).toMatchObject({ name: 'Calculator loop', owner_id: alice.id, version: 1 });
    expect(created.nodes).toHaveLength(5);

    const list = await as({ method: 'GET', url: '/api/v1/workflows/definitions' });
    conforms('WorkflowDefinitionsResponse', list.json());
    expect(list.json<{ definitions: Definition[]; total_count: number }>().definitions.map((d) => d.id)).toContain(created.id);

    const read = await as({ method: 'GET', url: `/api/v1/workflows/definitions/${created.id}` });
    expect(read.json<Definition>().edges).toEqual(created.edges);

    const renamed = await as({ method: 'PUT', url: `/api/v1/workflows/definitions/${created.id}`, payload: { name: 'Renamed' } });
    expect(renamed.json<Definition>()).toMatchObject({ name: 'Renamed', version: 1 });
    const regraphed = await as({
      method: 'PUT',
      url: `/api/v1/workflows/definitions/${created.id}`,
      payload: toolLoopGraph(['calculator', 'current_time']),
    });
    expect(regraphed.statusCode, regraphed.body).toBe(200);
    conforms('WorkflowDefinitionResponse', regraphed.json());
    expect(regraphed.json<Definition>().version).toBe(2);

    const deleted = await as({ method: 'DELETE', url: `/api/v1/workflows/definitions/${created.id}` });
    conforms('WorkflowDeleteResponse', deleted.json());
    expect(deleted.json()).toEqual({ message: 'Workflow definition deleted', workflow_id: created.id });
    expect((await as({ method: 'GET', url: `/api/v1/workflows/definitions/${created.id}` })).statusCode).toBe(404);
  });

  it('refuses a graph that cannot run with 422 naming the node or edge, and stores nothing', async () => {
    const as = asUser(api.app, alice);
    const before = await counts();
    const unknownTool = toolLoopGraph(['calculator', 'weather']);
    const first = await as({ method: 'POST', url: '/api/v1/workflows/definitions', payload: { name: 'bad', ...unknownTool } });
    expect(first.statusCode).toBe(422);
    conforms('HTTPValidationError', first.json());
    expect(first.json<{ detail: Problem[] }>().detail).toEqual([
      {
        loc: ['body', 'nodes', 3, 'data', 'config', 'tools', 1],
        msg: expect.stringMatching(/^node "toolbox": unknown tool "weather"/),
        type: 'workflow.unknown_tool',
      },
    ]);

    const dangling = {
      name: 'dangling',
      nodes: [builderNode('start', 'start'), builderNode('agent', 'model'), builderNode('rag', 'retrieval'), builderNode('end', 'end')],
      edges: [builderEdge('e1', 'start', 'agent'), builderEdge('e2', 'agent', 'ghost'), builderEdge('e3', 'rag', 'end')],
    };
    const second = await as({ method: 'POST', url: '/api/v1/workflows/definitions', payload: dangling });
    expect(second.statusCode).toBe(422);
    const problems = second.json<{ detail: Problem[] }>().detail;
    expect(problems.map((problem) => [problem.loc, problem.msg])).toEqual([
      [['body', 'nodes', 2, 'data', 'nodeType'], expect.stringMatching(/^node "rag": type "retrieval" cannot run/)],
      [['body', 'edges', 1, 'target'], 'edge "e2" (agent → ghost): unknown target node "ghost"'],
    ]);

    // A model that may call tools but whose tool calls no edge answers: a routing problem on the edge.
    const unanswered = {
      name: 'unanswered',
      nodes: [
        builderNode('start', 'start'),
        builderNode('agent', 'model'),
        builderNode('toolbox', 'tool', { tools: ['calculator'] }),
        builderNode('end', 'end'),
      ],
      edges: [builderEdge('e1', 'start', 'agent'), builderEdge('e2', 'agent', 'end'), builderEdge('e3', 'toolbox', 'agent')],
    };
    const third = await as({ method: 'POST', url: '/api/v1/workflows/definitions', payload: unanswered });
    expect(third.statusCode).toBe(422);
    expect(
      third
        .json<{ detail: Problem[] }>()
        .detail.map((problem) => problem.msg)
        .join('\n'),
    ).toMatch(/node "agent": .*leaving the tool calls unanswered/);

    // The validate route answers the same problems as data.
    const validated = await as({ method: 'POST', url: '/api/v1/workflows/definitions/validate', payload: dangling });
    expect(validated.statusCode).toBe(200);
    conforms('WorkflowValidationResponse', validated.json());
    expect(validated.json()).toEqual({ is_valid: false, errors: problems, warnings: [], suggestions: [] });
    const valid = await as({
      method: 'POST',
      url: '/api/v1/workflows/definitions/validate',
      payload: { name: 'ok', ...toolLoopGraph(['calculator']) },
    });
    expect(valid.json()).toEqual({ is_valid: true, errors: [], warnings: [], suggestions: [] });

    // Bodies the contract refuses: 422 before anything.
    const shapeless = await as({
      method: 'POST',
      url: '/api/v1/workflows/definitions',
      payload: { name: 'x', nodes: [{ id: 'a' }], edges: [] },
    });
    expect(shapeless.statusCode).toBe(422);
    expect(await counts()).toEqual(before);
  });

  it('hides another user\u2019s definition: 404 to read, change, delete, run or list its runs', async () => {
    const mine = await create(alice, { name: 'private', ...toolLoopGraph(['calculator']) });
    const as = asUser(api.app, bob);
    const missing = `${mine.id.slice(0, -1)}Z`;
    for (const id of [mine.id, missing]) {
      const answers = await Promise.all([
        as({ method: 'GET', url: `/api/v1/workflows/definitions/${id}` }),
        as({ method: 'PUT', url: `/api/v1/workflows/definitions/${id}`, payload: { name: 'stolen' } }),
        as({ method: 'DELETE', url: `/api/v1/workflows/definitions/${id}` }),
        as({
          method: 'POST',
          url: `/api/v1/workflows/definitions/${id}/execute`,
          payload: { definition_id: id, input_data: { message: 'hi' } },
        }),
        as({ method: 'GET', url: `/api/v1/workflows/definitions/${id}/executions` }),
        as({ method: 'GET', url: `/api/v1/workflows/definitions/${id}/analytics` }),
      ]);
      expect(answers.map((answer) => answer.statusCode)).toEqual([404, 404, 404, 404, 404, 404]);
      expect(new Set(answers.map((answer) => answer.body)).size).toBe(1);
    }
    const chat = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'hi', workflow_definition_id: mine.id },
    });
    expect(chat.statusCode).toBe(404);
    const template = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates',
      payload: { name: 'copy', description: 'copy', workflow_definition_id: mine.id },
    });
    expect(template.statusCode).toBe(404);
    const own = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/workflows/templates',
      payload: { name: 'own', description: 'private', workflow_definition_id: mine.id },
    });
    const fromTemplate = await as({
      method: 'POST',
      url: '/api/v1/workflows/definitions/from-template',
      payload: { template_id: own.json<{ id: string }>().id },
    });
    expect(fromTemplate.statusCode).toBe(404);
    expect(
      (
        await as({
          method: 'POST',
          url: `/api/v1/workflows/templates/${own.json<{ id: string }>().id}/execute`,
          payload: { input_data: { message: 'x' } },
        })
      ).statusCode,
    ).toBe(404);
    const listed = await as({ method: 'GET', url: '/api/v1/workflows/definitions' });
    expect(listed.json<{ definitions: Definition[] }>().definitions.map((d) => d.id)).not.toContain(mine.id);
    expect((await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/workflows/definitions/${mine.id}` })).json<Definition>().name).toBe(
      'private',
    );
  });

  it('executes a definition and reports its executions and analytics from the run rows', async () => {
    const as = asUser(api.app, alice);
    const definition = await create(alice, {
      name: 'measured',
      ...toolLoopGraph(['calculator'], { system_message: 'Be brief.', temperature: 0.2 }),
    });
    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: { input_tokens: 30, output_tokens: 5 } },
      { content: 'It is 42.', usage: { input_tokens: 50, output_tokens: 4 } },
    ]);
    const executed = await as({
      method: 'POST',
      url: `/api/v1/workflows/definitions/${definition.id}/execute`,
      payload: { definition_id: definition.id, input_data: { message: 'What is 6*7?' } },
    });
    expect(executed.statusCode, executed.body).toBe(200);
    conforms('WorkflowExecutionResponse', executed.json());
    expect(executed.json()).toMatchObject({
      definition_id: definition.id,
      status: 'completed',
      tokens_used: 89,
      tool_call_count: 1,
      model_call_count: 2,
      workflow: 'custom',
    });
    expect(api.modelRequests.at(-1)?.temperature).toBe(0.2);

    api.script([{ error: { message: 'bad request', status: 400 } }]);
    const failed = await as({
      method: 'POST',
      url: `/api/v1/workflows/definitions/${definition.id}/execute`,
      payload: { definition_id: definition.id, input_data: { message: 'fail please' } },
    });
    expect(failed.statusCode, failed.body).toBe(200);
    expect(failed.json()).toMatchObject({ status: 'failed', definition_id: definition.id });

    const mismatched = await as({
      method: 'POST',
      url: `/api/v1/workflows/definitions/${definition.id}/execute`,
      payload: { definition_id: 'other', input_data: { message: 'x' } },
    });
    expect(mismatched.statusCode).toBe(422);
    const noMessage = await as({
      method: 'POST',
      url: `/api/v1/workflows/definitions/${definition.id}/execute`,
      payload: { definition_id: definition.id, input_data: {} },
    });
    expect(noMessage.statusCode).toBe(422);
    expect(noMessage.json<{ detail: Problem[] }>().detail[0]?.loc).toEqual(['body', 'input_data', 'message']);

    const executions = await as({ method: 'GET', url: `/api/v1/workflows/definitions/${definition.id}/executions` });
    expect(executions.statusCode).toBe(200);
    const items = executions.json<{ id: string; status: string }[]>();
    items.forEach((item) => conforms('WorkflowExecutionResponse', item));
    expect(items.map((item) => item.id)).toEqual([failed.json<{ id: string }>().id, executed.json<{ id: string }>().id]);

    const Rows = z.object({
      model_call_count: z.number(),
      status: z.string(),
      input_tokens: z.number(),
      output_tokens: z.number(),
      total_tokens: z.number(),
      cost: z.number().nullable(),
      duration_ms: z.number().nullable(),
      tool_call_count: z.number(),
    });
    const rows = await api.db.pool.any(sql.type(Rows)`
      SELECT model_call_count, status, input_tokens, output_tokens, total_tokens, cost, duration_ms, tool_call_count FROM workflow_runs
      WHERE input ->> 'workflow_definition_id' = ${definition.id}`);
    expect(rows).toHaveLength(2);
    const analytics = await as({ method: 'GET', url: `/api/v1/workflows/definitions/${definition.id}/analytics` });
    expect(analytics.statusCode).toBe(200);
    conforms('WorkflowAnalyticsResponse', analytics.json());
    const body = analytics.json<{
      runs: Record<string, number | null>;
      total_execution_time_ms: number;
      complexity: { node_count: number; loop_complexity: number };
    }>();
    const durations = rows.map((row) => row.duration_ms ?? 0).sort((a, b) => a - b);
    expect(body.runs).toEqual({
      total: 2,
      completed: 1,
      errors: 1,
      cancelled: 0,
      live: 0,
      error_rate: 0.5,
      prompt_tokens: rows.reduce((sum, row) => sum + row.input_tokens, 0),
      completion_tokens: rows.reduce((sum, row) => sum + row.output_tokens, 0),
      total_tokens: rows.reduce((sum, row) => sum + row.total_tokens, 0),
      cost: rows.reduce((sum, row) => sum + (row.cost ?? 0), 0),
      cost_unknown_runs: 0,
      model_calls: rows.reduce((sum, row) => sum + row.model_call_count, 0),
      tool_calls: 1,
      p50_duration_ms: durations[0],
      p95_duration_ms: durations[1],
    });
    expect(body.runs['cost']).toBeGreaterThan(0);
    expect(body.total_execution_time_ms).toBe(durations[0]! + durations[1]!);
    expect(body.complexity).toMatchObject({ node_count: 3, loop_complexity: 1 });
  });

  it('runs a graph sent with the request (custom/execute) and with chat\u2019s workflow_config', async () => {
    const as = asUser(api.app, alice);
    api.script([{ content: 'Custom hello.', usage: { input_tokens: 9, output_tokens: 2 } }]);
    const graph = {
      nodes: [
        builderNode('start', 'start'),
        builderNode('memory', 'memory', { window: 4 }),
        builderNode('agent', 'model', { tool_choice: 'omit' }),
        builderNode('end', 'end'),
      ],
      edges: [builderEdge('a', 'start', 'memory'), builderEdge('b', 'memory', 'agent'), builderEdge('c', 'agent', 'end')],
    };
    const custom = await as({ method: 'POST', url: '/api/v1/workflows/definitions/custom/execute?message=hello', payload: graph });
    expect(custom.statusCode, custom.body).toBe(200);
    expect(custom.json()).toMatchObject({
      response: 'Custom hello.',
      execution: { status: 'completed', definition_id: 'custom', workflow: 'custom' },
    });

    api.script([{ content: 'Config hello.', usage: { input_tokens: 9, output_tokens: 2 } }]);
    const chat = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'again', workflow_config: graph } });
    expect(chat.statusCode, chat.body).toBe(200);
    expect(chat.json()).toMatchObject({ message: { content: 'Config hello.' } });
    const broken = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'x', workflow_config: { nodes: graph.nodes, edges: [] } },
    });
    expect(broken.statusCode).toBe(422);
    expect(broken.json<{ detail: Problem[] }>().detail[0]?.loc.slice(0, 2)).toEqual(['body', 'workflow_config']);
    const both = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'x', workflow_config: graph, workflow_definition_id: 'x' },
    });
    expect(both.statusCode).toBe(422);
  });

  it('answers the builder\u2019s defaults with the caller\u2019s tools', async () => {
    const as = asUser(api.app, alice);
    const all = await as({ method: 'GET', url: '/api/v1/workflows/defaults' });
    expect(all.statusCode).toBe(200);
    expect(all.json()).toMatchObject({
      tool: { tools: ['calculator', 'current_time'] },
      memory: { window: 40 },
      builtin_templates: ['chat', 'chat_with_tools'],
    });
    const one = await as({ method: 'GET', url: '/api/v1/workflows/defaults?node_type=memory' });
    expect(one.json()).toEqual({ node_type: 'memory', window: 40 });
    expect((await as({ method: 'GET', url: '/api/v1/workflows/defaults?node_type=retrieval' })).statusCode).toBe(422);
  });
});

describe('workflow templates', () => {
  type Template = {
    id: string;
    name: string;
    is_builtin: boolean;
    config_hash: string;
    nodes: unknown[];
    edges: unknown[];
    usage_count: number;
  };

  it('lists the built-in templates like any other, read-only', async () => {
    const as = asUser(api.app, alice);
    const list = await as({ method: 'GET', url: '/api/v1/workflows/templates' });
    conforms('WorkflowTemplatesResponse', list.json());
    const builtins = list.json<{ templates: Template[] }>().templates.filter((template) => template.is_builtin);
    expect(builtins.map((template) => template.id)).toEqual(['chat', 'chat_with_tools']);
    for (const id of ['chat', 'chat_with_tools']) {
      const update = await as({ method: 'PUT', url: `/api/v1/workflows/templates/${id}`, payload: { name: 'mine now' } });
      expect(update.statusCode).toBe(403);
      expect(update.json()).toMatchObject({ code: 'builtin_template_read_only' });
      expect((await as({ method: 'DELETE', url: `/api/v1/workflows/templates/${id}` })).statusCode).toBe(403);
    }
    // A definition from a built-in template runs like the template.
    const fromTemplate = await as({
      method: 'POST',
      url: '/api/v1/workflows/definitions/from-template',
      payload: { template_id: 'chat_with_tools', name_suffix: ' (copy)' },
    });
    expect(fromTemplate.statusCode, fromTemplate.body).toBe(200);
    conforms('WorkflowDefinitionResponse', fromTemplate.json());
    expect(fromTemplate.json()).toMatchObject({ name: 'chat_with_tools (copy)', template_id: 'chat_with_tools' });
    const model = api.script([{ content: 'Template answer.', usage: { input_tokens: 5, output_tokens: 2 } }]);
    const executed = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates/chat_with_tools/execute',
      payload: { input_data: { message: 'hi' } },
    });
    expect(executed.statusCode, executed.body).toBe(200);
    conforms('WorkflowExecutionResponse', executed.json());
    expect(executed.json()).toMatchObject({ definition_id: 'chat_with_tools', status: 'completed' });
    expect(model.calls[0]?.tools).toEqual(['calculator', 'current_time']);
  });

  it('creates a template from a definition, exports it and imports the export back unchanged', async () => {
    const as = asUser(api.app, alice);
    const definition = await create(alice, { name: 'to template', ...toolLoopGraph(['calculator']) });
    const created = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates',
      payload: { name: 'Calc', description: 'A calculator loop', workflow_definition_id: definition.id, tags: ['math'] },
    });
    expect(created.statusCode, created.body).toBe(200);
    conforms('WorkflowTemplateResponse', created.json());
    const template = created.json<Template>();
    expect(template.nodes).toEqual(definition.nodes);

    const exported = await as({ method: 'GET', url: `/api/v1/workflows/templates/${template.id}/export` });
    conforms('WorkflowTemplateExportResponse', exported.json());
    const exportBody = exported.json<{ template: Record<string, unknown> }>();
    const validated = await as({ method: 'POST', url: '/api/v1/workflows/templates/validate', payload: { template: exportBody.template } });
    conforms('WorkflowTemplateValidationResponse', validated.json());
    expect(validated.json()).toMatchObject({ is_valid: true, errors: [], template_info: { node_count: 5, edge_count: 5 } });

    const imported = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates/import',
      payload: { template: exportBody.template, override_name: 'Calc again' },
    });
    expect(imported.statusCode, imported.body).toBe(200);
    conforms('WorkflowTemplateResponse', imported.json());
    const copy = imported.json<Template>();
    expect(copy.id).not.toBe(template.id);
    expect(copy).toMatchObject({ name: 'Calc again', config_hash: template.config_hash, nodes: template.nodes, edges: template.edges });
    const builtinExport = await as({ method: 'GET', url: '/api/v1/workflows/templates/chat_with_tools/export' });
    const builtinImport = await as({ method: 'POST', url: '/api/v1/workflows/templates/import', payload: builtinExport.json() });
    expect(builtinImport.statusCode, builtinImport.body).toBe(200);
    expect(builtinImport.json<Template>()).toMatchObject({
      is_builtin: false,
      config_hash: builtinExport.json<{ template: Template }>().template.config_hash,
    });

    const badImport = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates/import',
      payload: { template: { ...exportBody.template, nodes: [builderNode('start', 'start')], description: '' } },
    });
    expect(badImport.statusCode).toBe(422);
    expect(badImport.json<{ detail: Problem[] }>().detail.map((problem) => problem.loc)).toEqual([['body', 'template', 'description']]);
    const invalid = await as({
      method: 'POST',
      url: '/api/v1/workflows/templates/validate',
      payload: { template: { ...exportBody.template, nodes: exportBody.template['nodes'], edges: [] } },
    });
    expect(invalid.json<{ is_valid: boolean; errors: string[] }>()).toMatchObject({ is_valid: false });
    expect(invalid.json<{ errors: string[] }>().errors).toEqual([
      'template.nodes.0: node "start": the start node has no outgoing edge; connect it to the first node',
    ]);

    const updated = await as({
      method: 'PUT',
      url: `/api/v1/workflows/templates/${template.id}`,
      payload: { description: 'Changed', is_public: true },
    });
    expect(updated.json()).toMatchObject({ description: 'Changed', is_public: true, version: 2, config_hash: template.config_hash });
    // Public: bob reads and exports it, but may not change or delete it.
    const other = asUser(api.app, bob);
    expect((await other({ method: 'GET', url: `/api/v1/workflows/templates/${template.id}/export` })).statusCode).toBe(200);
    expect((await other({ method: 'PUT', url: `/api/v1/workflows/templates/${template.id}`, payload: { name: 'x' } })).statusCode).toBe(
      404,
    );
    expect((await other({ method: 'DELETE', url: `/api/v1/workflows/templates/${copy.id}` })).statusCode).toBe(404);
    expect((await other({ method: 'GET', url: `/api/v1/workflows/templates/${copy.id}/export` })).statusCode).toBe(404);
    const deleted = await as({ method: 'DELETE', url: `/api/v1/workflows/templates/${copy.id}` });
    expect(deleted.json()).toEqual({ message: 'Workflow template deleted', workflow_id: copy.id });
  });
});
