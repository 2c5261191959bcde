import { sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';

/**
 * A user's workflow template: a builder graph (nodes and edges) with its catalogue
 * fields; its `usage_count` and `success_rate` are read from the runs that executed it.
 */
export const WorkflowTemplateRow = z.object({
  id: z.string(),
  owner_id: z.string(),
  name: z.string(),
  description: z.string(),
  category: z.string(),
  nodes: z.array(z.record(z.string(), z.unknown())),
  edges: z.array(z.record(z.string(), z.unknown())),
  default_params: z.record(z.string(), z.unknown()),
  required_tools: z.array(z.string()).nullable(),
  required_retrievers: z.array(z.string()).nullable(),
  tags: z.array(z.string()).nullable(),
  is_public: z.boolean(),
  workflow_definition_id: z.string().nullable(),
  base_template_id: z.string().nullable(),
  version: z.number().int(),
  usage_count: z.number().int(),
  success_rate: z.number().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type WorkflowTemplateRow = z.infer<typeof WorkflowTemplateRow>;

export type WorkflowTemplateFields = {
  readonly name: string;
  readonly description: string;
  readonly category?: string | undefined;
  readonly nodes: readonly Record<string, unknown>[];
  readonly edges: readonly Record<string, unknown>[];
  readonly default_params?: Record<string, unknown> | undefined;
  readonly required_tools?: readonly string[] | null | undefined;
  readonly required_retrievers?: readonly string[] | null | undefined;
  readonly tags?: readonly string[] | null | undefined;
  readonly is_public?: boolean | undefined;
  readonly workflow_definition_id?: string | null | undefined;
  readonly base_template_id?: string | null | undefined;
};

/** The catalogue fields an update may change (the graph of a template is fixed: import a new one). */
export type WorkflowTemplateChanges = Partial<
  Pick<
    WorkflowTemplateFields,
    'name' | 'description' | 'category' | 'default_params' | 'required_tools' | 'required_retrievers' | 'tags' | 'is_public'
  >
>;

const selectTemplates = sql.fragment`
  SELECT t.id, t.owner_id, t.name, t.description, t.category, t.nodes, t.edges, t.default_params, t.required_tools,
         t.required_retrievers, t.tags, t.is_public, t.workflow_definition_id, t.base_template_id, t.version,
         u.usage_count, u.success_rate, t.created_at, t.updated_at
  FROM workflow_templates t
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS usage_count,
           (count(*) FILTER (WHERE r.status = 'completed'))::float8
             / NULLIF(count(*) FILTER (WHERE r.status NOT IN ('queued', 'running')), 0) AS success_rate
    FROM workflow_runs r WHERE r.input ? 'workflow_template_id' AND r.input ->> 'workflow_template_id' = t.id
  ) u ON true`;

const jsonOrNull = (value: unknown) => (value === null || value === undefined ? null : sql.jsonb(value as never));
/** An update's value for a column: absent keeps it, null clears it. */
const setJson = (column: string, value: unknown) => (value === undefined ? sql.identifier([column]) : jsonOrNull(value));

/** Workflow templates: per user, public ones readable by all; only the owner changes one. */
export const createWorkflowTemplatesRepository = (pool: DatabasePool) => {
  const visible = async (id: string, userId: string): Promise<WorkflowTemplateRow | null> =>
    pool.maybeOne(sql.type(WorkflowTemplateRow)`${selectTemplates} WHERE t.id = ${id} AND (t.owner_id = ${userId} OR t.is_public)`);

  return {
    findVisible: visible,

    exists: async (id: string): Promise<boolean> =>
      (await pool.maybeOne(sql.type(z.object({ id: z.string() }))`SELECT id FROM workflow_templates WHERE id = ${id}`)) !== null,

    create: async (ownerId: string, fields: WorkflowTemplateFields): Promise<WorkflowTemplateRow> => {
      const id = ulid();
      await pool.query(sql.unsafe`
        INSERT INTO workflow_templates (id, owner_id, name, description, category, nodes, edges, default_params, required_tools,
                                        required_retrievers, tags, is_public, workflow_definition_id, base_template_id)
        VALUES (${id}, ${ownerId}, ${fields.name}, ${fields.description}, ${fields.category ?? 'custom'},
                ${sql.jsonb(fields.nodes as never)}, ${sql.jsonb(fields.edges as never)}, ${sql.jsonb((fields.default_params ?? {}) as never)},
                ${jsonOrNull(fields.required_tools)}, ${jsonOrNull(fields.required_retrievers)}, ${jsonOrNull(fields.tags)},
                ${fields.is_public ?? false}, ${fields.workflow_definition_id ?? null}, ${fields.base_template_id ?? null})`);
      return (await visible(id, ownerId)) as WorkflowTemplateRow;
    },

    list: async (userId: string): Promise<readonly WorkflowTemplateRow[]> =>
      pool.any(
        sql.type(WorkflowTemplateRow)`${selectTemplates} WHERE t.owner_id = ${userId} OR t.is_public ORDER BY t.created_at DESC, t.id DESC`,
      ),

    /** Applies the changes to the owner's template (moving `version`); null when not theirs. */
    update: async (id: string, ownerId: string, changes: WorkflowTemplateChanges): Promise<WorkflowTemplateRow | null> => {
      const result = await pool.query(sql.unsafe`
        UPDATE workflow_templates SET
          name = COALESCE(${changes.name ?? null}, name),
          description = COALESCE(${changes.description ?? null}, description),
          category = COALESCE(${changes.category ?? null}, category),
          default_params = COALESCE(${jsonOrNull(changes.default_params)}, default_params),
          required_tools = ${setJson('required_tools', changes.required_tools)},
          required_retrievers = ${setJson('required_retrievers', changes.required_retrievers)},
          tags = ${setJson('tags', changes.tags)},
          is_public = COALESCE(${changes.is_public ?? null}, is_public),
          version = version + 1,
          updated_at = now()
        WHERE id = ${id} AND owner_id = ${ownerId}`);
      return result.rowCount === 0 ? null : visible(id, ownerId);
    },

    delete: async (id: string, ownerId: string): Promise<boolean> =>
      (await pool.query(sql.unsafe`DELETE FROM workflow_templates WHERE id = ${id} AND owner_id = ${ownerId}`)).rowCount > 0,

    /** The user's runs of a built-in template (runs with that workflow), for its usage figures. */
    builtinUsage: async (workflow: string, userId: string): Promise<{ usage_count: number; success_rate: number | null }> =>
      pool.one(sql.type(z.object({ usage_count: z.number().int(), success_rate: z.number().nullable() }))`
        SELECT count(*)::int AS usage_count,
               (count(*) FILTER (WHERE status = 'completed'))::float8
                 / NULLIF(count(*) FILTER (WHERE status NOT IN ('queued', 'running')), 0) AS success_rate
        FROM workflow_runs WHERE workflow = ${workflow} AND user_id = ${userId}`),
  };
};

export type WorkflowTemplatesRepository = ReturnType<typeof createWorkflowTemplatesRepository>;
