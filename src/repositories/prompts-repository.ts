import { sql, type DatabasePool, type FragmentSqlToken } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { PROMPT_FIELDS, type PromptCategory, type PromptType } from '../prompts/prompt-fields.js';
import { insertColumns, updateSets, zodShapeOf } from './record-fields.js';

/** A prompt as the API answers it: its columns and the usage figures of the runs that used it. */
export const PromptRow = z.object({
  id: z.string(),
  owner_id: z.string(),
  ...zodShapeOf(PROMPT_FIELDS),
  version: z.number().int(),
  is_latest: z.boolean(),
  changelog: z.string().nullable(),
  rating: z.number().nullable(),
  rating_count: z.number().int(),
  content_hash: z.string(),
  estimated_tokens: z.number().int().nullable(),
  language: z.string().nullable(),
  usage_count: z.number().int(),
  success_rate: z.number().nullable(),
  avg_response_time_ms: z.number().int().nullable(),
  last_used_at: z.string().nullable(),
  total_tokens_used: z.number().int(),
  total_cost: z.number(),
  avg_tokens_per_use: z.number().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

/** The columns the template checks and the chat resolver read (the row holds every field of PROMPT_FIELDS). */
export type PromptRow = {
  readonly id: string;
  readonly owner_id: string;
  readonly name: string;
  readonly is_public: boolean;
  readonly content: string;
  readonly template_format: string;
  readonly variables: readonly string[] | null;
  readonly required_variables: readonly string[] | null;
  readonly max_length: number | null;
  readonly min_length: number | null;
  readonly [field: string]: unknown;
};

/** What a write stores beside the editable fields, computed from the content. */
export type PromptDerived = { readonly contentHash: string; readonly estimatedTokens: number };

const promptColumns = sql.fragment`p.id, p.owner_id, ${sql.join(
  PROMPT_FIELDS.map((field) => sql.identifier(['p', field.name])),
  sql.fragment`, `,
)}, p.version, true AS is_latest, p.changelog, p.rating, p.rating_count, p.content_hash, p.estimated_tokens, p.language,
  p.created_at, p.updated_at`;

/** Every prompt column with its usage figures, read from the runs that name it (index workflow_runs_prompt_idx). */
const selectPrompts = sql.fragment`
  SELECT ${promptColumns}, u.usage_count, u.success_rate, u.avg_response_time_ms, u.last_used_at, u.total_tokens_used,
         u.total_cost, u.avg_tokens_per_use
  FROM prompts p
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS usage_count,
           (count(*) FILTER (WHERE r.status = 'completed'))::float8
             / NULLIF(count(*) FILTER (WHERE r.status NOT IN ('queued', 'running')), 0) AS success_rate,
           round(avg(r.duration_ms))::int AS avg_response_time_ms,
           max(r.started_at) AS last_used_at,
           COALESCE(sum(r.total_tokens), 0)::bigint AS total_tokens_used,
           COALESCE(sum(r.cost), 0) AS total_cost,
           avg(r.total_tokens)::float8 AS avg_tokens_per_use
    FROM workflow_runs r WHERE r.input ? 'prompt_id' AND r.input ->> 'prompt_id' = p.id
  ) u ON true`;

export const PROMPT_SORT_COLUMNS = [
  'created_at',
  'updated_at',
  'name',
  'prompt_type',
  'category',
  'version',
  'usage_count',
  'last_used_at',
  'total_cost',
] as const;
export type PromptSortColumn = (typeof PROMPT_SORT_COLUMNS)[number];

export type PromptFilter = {
  /** The reader: their own prompts and every public one are visible. */
  readonly userId: string;
  readonly promptType?: PromptType | undefined;
  readonly category?: PromptCategory | undefined;
  readonly tags?: readonly string[] | undefined;
  /** true: public ones only (the reader's and others'); false: the reader's private ones. */
  readonly isPublic?: boolean | undefined;
  readonly isChain?: boolean | undefined;
};

const visibleTo = (userId: string) => sql.fragment`(p.owner_id = ${userId} OR p.is_public)`;

const whereOf = (filter: PromptFilter) => {
  const conditions: FragmentSqlToken[] = [visibleTo(filter.userId)];
  if (filter.promptType !== undefined) conditions.push(sql.fragment`p.prompt_type = ${filter.promptType}`);
  if (filter.category !== undefined) conditions.push(sql.fragment`p.category = ${filter.category}`);
  if (filter.tags !== undefined && filter.tags.length > 0) conditions.push(sql.fragment`p.tags @> ${sql.jsonb([...filter.tags])}`);
  if (filter.isPublic === true) conditions.push(sql.fragment`p.is_public`);
  if (filter.isPublic === false) conditions.push(sql.fragment`p.owner_id = ${filter.userId} AND NOT p.is_public`);
  if (filter.isChain !== undefined) conditions.push(sql.fragment`p.is_chain = ${filter.isChain}`);
  return sql.join(conditions, sql.fragment` AND `);
};

export type PromptsRepository = ReturnType<typeof createPromptsRepository>;

/**
 * Prompts: each belongs to one user; a public one is readable by every user, but only its
 * owner changes or deletes it. A prompt another user may not see reads as missing.
 */
export const createPromptsRepository = (pool: DatabasePool) => {
  const visible = async (id: string, userId: string): Promise<PromptRow | null> =>
    (await pool.maybeOne(sql.type(PromptRow)`${selectPrompts} WHERE p.id = ${id} AND ${visibleTo(userId)}`)) as PromptRow | null;

  return {
    /** The prompt if the user may read it (theirs, or public), else null. */
    findVisible: visible,

    /** Whether the prompt exists at all (for the operators' side of an access_denied event). */
    exists: async (id: string): Promise<boolean> =>
      (await pool.maybeOne(sql.type(z.object({ id: z.string() }))`SELECT id FROM prompts WHERE id = ${id}`)) !== null,

    create: async (ownerId: string, fields: Readonly<Record<string, unknown>>, derived: PromptDerived): Promise<PromptRow> => {
      const id = ulid();
      const insert = insertColumns(PROMPT_FIELDS, fields);
      await pool.query(sql.unsafe`
        INSERT INTO prompts (id, owner_id, ${insert.columns}, content_hash, estimated_tokens)
        VALUES (${id}, ${ownerId}, ${insert.values}, ${derived.contentHash}, ${derived.estimatedTokens})`);
      return (await visible(id, ownerId)) as PromptRow;
    },

    list: async (
      filter: PromptFilter,
      page: { limit: number; offset: number; sortBy: PromptSortColumn; sortOrder: 'asc' | 'desc' },
    ): Promise<{ rows: readonly PromptRow[]; total: number }> => {
      const where = whereOf(filter);
      const direction = page.sortOrder === 'asc' ? sql.fragment`ASC` : sql.fragment`DESC`;
      const rows = await pool.any(sql.type(PromptRow)`
        SELECT * FROM (${selectPrompts} WHERE ${where}) listed
        ORDER BY ${sql.identifier([page.sortBy])} ${direction} NULLS LAST, id ${direction}
        LIMIT ${page.limit} OFFSET ${page.offset}`);
      const total = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM prompts p WHERE ${where}`);
      return { rows: rows as unknown as readonly PromptRow[], total };
    },

    /**
     * Changes the owner's prompt: `prepare` sees the row as it is (locked, so concurrent
     * edits cannot combine into a template that disagrees with its variables) and returns
     * the changes to write, or throws to change nothing. Null when the user owns no such prompt.
     */
    update: async (
      id: string,
      ownerId: string,
      prepare: (row: PromptRow) => { changes: Readonly<Record<string, unknown>>; derived: PromptDerived },
    ): Promise<PromptRow | null> => {
      const changed = await pool.transaction(async (tx) => {
        const row = (await tx.maybeOne(
          sql.type(PromptRow)`${selectPrompts} WHERE p.id = ${id} AND p.owner_id = ${ownerId} FOR UPDATE OF p`,
        )) as PromptRow | null;
        if (row === null) {
          return false;
        }
        const { changes, derived } = prepare(row);
        const content = typeof changes['content'] === 'string' ? changes['content'] : row.content;
        await tx.query(sql.unsafe`
          UPDATE prompts SET ${sql.join(
            [
              ...updateSets(PROMPT_FIELDS, changes),
              sql.fragment`version = CASE WHEN content IS DISTINCT FROM ${content} THEN version + 1 ELSE version END`,
              sql.fragment`content_hash = ${derived.contentHash}`,
              sql.fragment`estimated_tokens = ${derived.estimatedTokens}`,
              sql.fragment`updated_at = now()`,
            ],
            sql.fragment`, `,
          )}
          WHERE id = ${id}`);
        return true;
      });
      return changed ? visible(id, ownerId) : null;
    },

    /** Deletes the owner's prompt; false when the user owns no such prompt. Runs that used it keep its id. */
    delete: async (id: string, ownerId: string): Promise<boolean> =>
      (await pool.query(sql.unsafe`DELETE FROM prompts WHERE id = ${id} AND owner_id = ${ownerId}`)).rowCount > 0,
  };
};
