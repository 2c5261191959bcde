import { sql, type DatabasePool, type FragmentSqlToken } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { PROFILE_FIELDS, type ProfileType } from '../profiles/profile-fields.js';
import { insertColumns, updateSets, zodShapeOf } from './record-fields.js';

/** A profile as the API answers it: its columns and the usage figures of the runs that used it. */
export const ProfileRow = z.object({
  id: z.string(),
  owner_id: z.string(),
  ...zodShapeOf(PROFILE_FIELDS),
  usage_count: z.number().int(),
  total_tokens_used: z.number().int(),
  total_cost: z.number(),
  last_used_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

/** The columns the chat resolver reads (the row holds every field of PROFILE_FIELDS). */
export type ProfileRow = {
  readonly id: string;
  readonly owner_id: string;
  readonly name: string;
  readonly is_public: boolean;
  readonly llm_provider: string | null;
  readonly llm_model: string | null;
  readonly temperature: number;
  readonly max_tokens: number;
  readonly top_p: number | null;
  readonly context_window: number;
  /** The tools its chats are offered (of the user's tool set); null: all of them. */
  readonly available_tools: readonly string[] | null;
  readonly system_prompt: string | null;
  readonly enable_tools: boolean;
  readonly memory_enabled: boolean;
  readonly [field: string]: unknown;
};

const profileColumns = sql.fragment`p.id, p.owner_id, ${sql.join(
  PROFILE_FIELDS.map((field) => sql.identifier(['p', field.name])),
  sql.fragment`, `,
)}, p.created_at, p.updated_at`;

/** Every profile column with its usage figures, read from the runs that name it (index workflow_runs_profile_idx). */
const selectProfiles = sql.fragment`
  SELECT ${profileColumns}, u.usage_count, u.total_tokens_used, u.total_cost, u.last_used_at
  FROM profiles p
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS usage_count, COALESCE(sum(r.total_tokens), 0)::bigint AS total_tokens_used,
           COALESCE(sum(r.cost), 0) AS total_cost, max(r.started_at) AS last_used_at
    FROM workflow_runs r WHERE r.input ? 'profile_id' AND r.input ->> 'profile_id' = p.id
  ) u ON true`;

export const PROFILE_SORT_COLUMNS = [
  'created_at',
  'updated_at',
  'name',
  'profile_type',
  'llm_provider',
  'usage_count',
  'total_tokens_used',
  'total_cost',
  'last_used_at',
] as const;
export type ProfileSortColumn = (typeof PROFILE_SORT_COLUMNS)[number];

export type ProfileFilter = {
  /** The reader: their own profiles and every public one are visible. */
  readonly userId: string;
  readonly profileType?: ProfileType | undefined;
  readonly llmProvider?: string | undefined;
  /** Profiles carrying every one of these tags. */
  readonly tags?: readonly string[] | undefined;
  /** true: public ones only (the reader's and others'); false: the reader's private ones. */
  readonly isPublic?: boolean | undefined;
};

const visibleTo = (userId: string) => sql.fragment`(p.owner_id = ${userId} OR p.is_public)`;

const whereOf = (filter: ProfileFilter) => {
  const conditions: FragmentSqlToken[] = [visibleTo(filter.userId)];
  if (filter.profileType !== undefined) conditions.push(sql.fragment`p.profile_type = ${filter.profileType}`);
  if (filter.llmProvider !== undefined) conditions.push(sql.fragment`p.llm_provider = ${filter.llmProvider}`);
  if (filter.tags !== undefined && filter.tags.length > 0) conditions.push(sql.fragment`p.tags @> ${sql.jsonb([...filter.tags])}`);
  if (filter.isPublic === true) conditions.push(sql.fragment`p.is_public`);
  if (filter.isPublic === false) conditions.push(sql.fragment`p.owner_id = ${filter.userId} AND NOT p.is_public`);
  return sql.join(conditions, sql.fragment` AND `);
};

export type ProfilesRepository = ReturnType<typeof createProfilesRepository>;

/**
 * Profiles: each belongs to one user; a public one is readable by every user, but only
 * its owner changes or deletes it. A profile another user may not see reads as missing.
 */
export const createProfilesRepository = (pool: DatabasePool) => {
  const visible = async (id: string, userId: string): Promise<ProfileRow | null> =>
    (await pool.maybeOne(sql.type(ProfileRow)`${selectProfiles} WHERE p.id = ${id} AND ${visibleTo(userId)}`)) as ProfileRow | null;

  return {
    /** The profile if the user may read it (theirs, or public), else null. */
    findVisible: visible,

    /** Whether the profile exists at all (for the operators' side of an access_denied event). */
    exists: async (id: string): Promise<boolean> =>
      (await pool.maybeOne(sql.type(z.object({ id: z.string() }))`SELECT id FROM profiles WHERE id = ${id}`)) !== null,

    create: async (ownerId: string, fields: Readonly<Record<string, unknown>>): Promise<ProfileRow> => {
      const id = ulid();
      const insert = insertColumns(PROFILE_FIELDS, fields);
      await pool.query(sql.unsafe`INSERT INTO profiles (id, owner_id, ${insert.columns}) VALUES (${id}, ${ownerId}, ${insert.values})`);
      return (await visible(id, ownerId)) as ProfileRow;
    },

    list: async (
      filter: ProfileFilter,
      page: { limit: number; offset: number; sortBy: ProfileSortColumn; sortOrder: 'asc' | 'desc' },
    ): Promise<{ rows: readonly ProfileRow[]; total: number }> => {
      const where = whereOf(filter);
      const direction = page.sortOrder === 'asc' ? sql.fragment`ASC` : sql.fragment`DESC`;
      const rows = await pool.any(sql.type(ProfileRow)`
        SELECT * FROM (${selectProfiles} WHERE ${where}) listed
        ORDER BY ${sql.identifier([page.sortBy])} ${direction} NULLS LAST, id ${direction}
        LIMIT ${page.limit} OFFSET ${page.offset}`);
      const total = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM profiles p WHERE ${where}`);
      return { rows: rows as unknown as readonly ProfileRow[], total };
    },

    /** Applies the changes to the owner's profile; null when the user owns no such profile. */
    update: async (id: string, ownerId: string, changes: Readonly<Record<string, unknown>>): Promise<ProfileRow | null> => {
      const sets = updateSets(PROFILE_FIELDS, changes);
      const result = await pool.query(sql.unsafe`
        UPDATE profiles SET ${sql.join([...sets, sql.fragment`updated_at = now()`], sql.fragment`, `)}
        WHERE id = ${id} AND owner_id = ${ownerId}`);
      return result.rowCount === 0 ? null : visible(id, ownerId);
    },

    /** Deletes the owner's profile; false when the user owns no such profile. Runs that used it keep its id. */
    delete: async (id: string, ownerId: string): Promise<boolean> =>
      (await pool.query(sql.unsafe`DELETE FROM profiles WHERE id = ${id} AND owner_id = ${ownerId}`)).rowCount > 0,
  };
};
