import { sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';

const Json = z.unknown();
const JsonList = z.array(z.record(z.string(), z.unknown()));

/** A stored workflow definition: the builder's nodes and edges as the user sent them. */
export const WorkflowDefinitionRow = z.object({
  id: z.string(),
  owner_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  nodes: JsonList,
  edges: JsonList,
  metadata: z.record(z.string(), Json).nullable(),
  is_public: z.boolean(),
  tags: z.array(z.string()).nullable(),
  template_id: z.string().nullable(),
  version: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type WorkflowDefinitionRow = z.infer<typeof WorkflowDefinitionRow>;

export type WorkflowDefinitionFields = {
  readonly name: string;
  readonly description?: string | null | undefined;
  readonly nodes: readonly Record<string, unknown>[];
  readonly edges: readonly Record<string, unknown>[];
  readonly metadata?: Record<string, unknown> | null | undefined;
  readonly is_public?: boolean | undefined;
  readonly tags?: readonly string[] | null | undefined;
  readonly template_id?: string | null | undefined;
};

/** The run figures of one definition, from the rows of the runs that executed it. */
export const DefinitionRunStats = z.object({
  runs: z.number().int(),
  completed: z.number().int(),
  errors: z.number().int(),
  cancelled: z.number().int(),
  live: z.number().int(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  cost: z.number(),
  cost_unknown_runs: z.number().int(),
  model_calls: z.number(),
  tool_calls: z.number(),
  total_duration_ms: z.number(),
  p50_duration_ms: z.number().nullable(),
  p95_duration_ms: z.number().nullable(),
  first_started_at: z.string().nullable(),
  last_finished_at: z.string().nullable(),
});
export type DefinitionRunStats = z.infer<typeof DefinitionRunStats>;

const columns = sql.fragment`
  id, owner_id, name, description, nodes, edges, metadata, is_public, tags, template_id, version, created_at, updated_at`;

const jsonOrNull = (value: unknown) => (value === null || value === undefined ? null : sql.jsonb(value as never));

/**
 * Workflow definitions: each belongs to one user; a public one is readable (and runnable)
 * by every user, changed or deleted only by its owner.
 */
export const createWorkflowDefinitionsRepository = (pool: DatabasePool) => {
  const visible = async (id: string, userId: string): Promise<WorkflowDefinitionRow | null> =>
    pool.maybeOne(sql.type(WorkflowDefinitionRow)`
      SELECT ${columns} FROM workflow_definitions WHERE id = ${id} AND (owner_id = ${userId} OR is_public)`);

  return {
    /** The definition if the user may read it (theirs, or public), else null. */
    findVisible: visible,

    exists: async (id: string): Promise<boolean> =>
      (await pool.maybeOne(sql.type(z.object({ id: z.string() }))`SELECT id FROM workflow_definitions WHERE id = ${id}`)) !== null,

    create: async (ownerId: string, fields: WorkflowDefinitionFields): Promise<WorkflowDefinitionRow> => {
      const id = ulid();
      return pool.one(sql.type(WorkflowDefinitionRow)`
        INSERT INTO workflow_definitions (id, owner_id, name, description, nodes, edges, metadata, is_public, tags, template_id)
        VALUES (${id}, ${ownerId}, ${fields.name}, ${fields.description ?? null}, ${sql.jsonb(fields.nodes as never)},
                ${sql.jsonb(fields.edges as never)}, ${jsonOrNull(fields.metadata)}, ${fields.is_public ?? false},
                ${jsonOrNull(fields.tags)}, ${fields.template_id ?? null})
        RETURNING ${columns}`);
    },

    /** The user's own definitions and every public one, newest first. */
    list: async (userId: string): Promise<readonly WorkflowDefinitionRow[]> =>
      pool.any(sql.type(WorkflowDefinitionRow)`
        SELECT ${columns} FROM workflow_definitions WHERE owner_id = ${userId} OR is_public
        ORDER BY created_at DESC, id DESC`),

    /** Replaces the fields given on the owner's definition (a graph change moves `version`); null when not theirs. */
    update: async (id: string, ownerId: string, changes: Partial<WorkflowDefinitionFields>): Promise<WorkflowDefinitionRow | null> => {
      const graphChanged = changes.nodes !== undefined || changes.edges !== undefined;
      return pool.maybeOne(sql.type(WorkflowDefinitionRow)`
        UPDATE workflow_definitions SET
          name = COALESCE(${changes.name ?? null}, name),
          description = ${changes.description === undefined ? sql.fragment`description` : sql.fragment`${changes.description}`},
          nodes = COALESCE(${jsonOrNull(changes.nodes)}, nodes),
          edges = COALESCE(${jsonOrNull(changes.edges)}, edges),
          metadata = ${changes.metadata === undefined ? sql.fragment`metadata` : sql.fragment`${jsonOrNull(changes.metadata)}`},
          version = version + ${graphChanged ? 1 : 0},
          updated_at = now()
        WHERE id = ${id} AND owner_id = ${ownerId}
        RETURNING ${columns}`);
    },

    delete: async (id: string, ownerId: string): Promise<boolean> =>
      (await pool.query(sql.unsafe`DELETE FROM workflow_definitions WHERE id = ${id} AND owner_id = ${ownerId}`)).rowCount > 0,

    /**
     * The figures of the definition's runs by `userId` (null: everyone's), read from their
     * rows: the same rows every other report sums. Durations are the ended runs' own
     * (`percentile_disc`: a run's real duration, not an interpolation).
     */
    runStats: async (definitionId: string, userId: string | null): Promise<DefinitionRunStats> =>
      pool.one(sql.type(DefinitionRunStats)`
        SELECT count(*)::int AS runs,
               (count(*) FILTER (WHERE status = 'completed'))::int AS completed,
               (count(*) FILTER (WHERE status IN ('failed', 'timedOut', 'budgetExceeded', 'interrupted')))::int AS errors,
               (count(*) FILTER (WHERE status = 'cancelled'))::int AS cancelled,
               (count(*) FILTER (WHERE status IN ('queued', 'running')))::int AS live,
               COALESCE(sum(input_tokens), 0)::bigint AS prompt_tokens,
               COALESCE(sum(output_tokens), 0)::bigint AS completion_tokens,
               COALESCE(sum(total_tokens), 0)::bigint AS total_tokens,
               COALESCE(sum(cost), 0) AS cost,
               (count(*) FILTER (WHERE cost_unknown))::int AS cost_unknown_runs,
               COALESCE(sum(model_call_count), 0)::bigint AS model_calls,
               COALESCE(sum(tool_call_count), 0)::bigint AS tool_calls,
               COALESCE(sum(duration_ms), 0)::bigint AS total_duration_ms,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_duration_ms,
               percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_duration_ms,
               min(started_at) AS first_started_at,
               max(finished_at) AS last_finished_at
        FROM workflow_runs
        WHERE input ? 'workflow_definition_id' AND input ->> 'workflow_definition_id' = ${definitionId}
          ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}`),
  };
};

export type WorkflowDefinitionsRepository = ReturnType<typeof createWorkflowDefinitionsRepository>;
