import type { FastifyPluginAsync } from 'fastify';
import { LIST_PATHS } from '../http/list-paths.js';
import { sharedResourceAccess } from './shared-resource-access.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { PROFILE_TYPES, type ProfileType } from '../profiles/profile-fields.js';
import { refuseUnappliedProfileSettings } from '../profiles/profile-settings.js';
import { createProfilesRepository, PROFILE_SORT_COLUMNS, type ProfileSortColumn } from '../repositories/profiles-repository.js';

const MAX_PAGE = 100;
const MAX_OFFSET = 1_000_000_000;

const ProfileParams = {
  type: 'object',
  required: ['profile_id'],
  properties: { profile_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Profile ID' } },
} as const;
type ProfileParams = { profile_id: string };

const ListQuery = {
  type: 'object',
  properties: {
    profile_type: { type: 'string', enum: PROFILE_TYPES, description: 'Filter by profile type' },
    llm_provider: { type: 'string', maxLength: 50, description: 'Filter by LLM provider' },
    tags: {
      type: 'array',
      items: { type: 'string', maxLength: 100 },
      maxItems: 10,
      description: 'Profiles carrying all these tags (`?tags=a&tags=b`)',
    },
    is_public: { type: 'boolean', description: "true: public profiles only (yours and others'); false: your private ones" },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50, description: 'Maximum number of results' },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0, description: 'Number of results to skip' },
    sort_by: { type: 'string', enum: PROFILE_SORT_COLUMNS, default: 'created_at', description: 'Sort field' },
    sort_order: { type: 'string', enum: ['asc', 'desc'], default: 'desc', description: 'Sort order' },
  },
} as const;
type ListQuery = {
  profile_type?: ProfileType;
  llm_provider?: string;
  tags?: string[];
  is_public?: boolean;
  limit: number;
  offset: number;
  sort_by: ProfileSortColumn;
  sort_order: 'asc' | 'desc';
};

type ProfileBody = Record<string, unknown>;

/**
 * `/api/v1/profiles/*`: the caller's profiles (create, list, read, update, delete) and
 * every user's public ones (list, read). Another user's private profile, and any write
 * to a profile the caller does not own, answers like a missing one (404).
 */
export const profileRoutes: FastifyPluginAsync = async (app) => {
  const profiles = createProfilesRepository(app.db.pool);

  app.addHook('onRequest', app.authenticate);

  const { notFound, visible, owned } = sharedResourceAccess(app, { resource: 'profile', label: 'Profile', repository: profiles });

  // The contract's path has no trailing slash; the slashed one answers too, undocumented.
  for (const [url, hide] of LIST_PATHS) {
    app.get<{ Querystring: ListQuery }>(
      url,
      {
        prefixTrailingSlash: 'slash',
        schema: {
          hide,
          tags: ['Profiles'],
          summary: 'List Profiles',
          description: "The caller's profiles and every user's public ones, filtered, sorted and paginated.",
          operationId: 'list_profiles_api_v1_profiles_get',
          security: bearerSecurity,
          querystring: ListQuery,
          response: { 200: { $ref: 'ProfileListResponse#' }, ...errorResponses(401) },
        },
      },
      async (request) => {
        const query = request.query;
        const { rows, total } = await profiles.list(
          {
            userId: request.user.id,
            profileType: query.profile_type,
            llmProvider: query.llm_provider,
            tags: query.tags,
            isPublic: query.is_public,
          },
          { limit: query.limit, offset: query.offset, sortBy: query.sort_by, sortOrder: query.sort_order },
        );
        return { profiles: rows, total_count: total, limit: query.limit, offset: query.offset };
      },
    );
  }

  app.post<{ Body: ProfileBody }>(
    '/',
    {
      schema: {
        tags: ['Profiles'],
        summary: 'Create Profile',
        operationId: 'create_profile_api_v1_profiles__post',
        security: bearerSecurity,
        body: { $ref: 'ProfileCreate#' },
        response: { 201: { $ref: 'ProfileResponse#' }, ...errorResponses(401, 413) },
      },
    },
    async (request, reply) => {
      refuseUnappliedProfileSettings(request.body);
      return reply.status(201).send(await profiles.create(request.user.id, request.body));
    },
  );

  app.get<{ Params: ProfileParams }>(
    '/:profile_id',
    {
      schema: {
        tags: ['Profiles'],
        summary: 'Get Profile',
        description: "One of the caller's profiles, or another user's public one.",
        operationId: 'get_profile_api_v1_profiles__profile_id__get',
        security: bearerSecurity,
        params: ProfileParams,
        response: { 200: { $ref: 'ProfileResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => visible(request, request.params.profile_id),
  );

  app.put<{ Params: ProfileParams; Body: ProfileBody }>(
    '/:profile_id',
    {
      schema: {
        tags: ['Profiles'],
        summary: 'Update Profile',
        description: 'Changes the fields present in the body (owner only); null clears a field that can be empty.',
        operationId: 'update_profile_api_v1_profiles__profile_id__put',
        security: bearerSecurity,
        params: ProfileParams,
        body: { $ref: 'ProfileUpdate#' },
        response: { 200: { $ref: 'ProfileResponse#' }, ...errorResponses(401, 404, 413) },
      },
    },
    async (request) => {
      refuseUnappliedProfileSettings(request.body); // the same 422 for any id: it reveals nothing
      await owned(request, request.params.profile_id);
      const row = await profiles.update(request.params.profile_id, request.user.id, request.body);
      if (row === null) {
        throw notFound(); // deleted meanwhile
      }
      return row;
    },
  );

  app.delete<{ Params: ProfileParams }>(
    '/:profile_id',
    {
      schema: {
        tags: ['Profiles'],
        summary: 'Delete Profile',
        description: 'Deletes the profile (owner only). Conversations and runs that used it keep its id.',
        operationId: 'delete_profile_api_v1_profiles__profile_id__delete',
        security: bearerSecurity,
        params: ProfileParams,
        response: { 200: { $ref: 'ProfileDeleteResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      await owned(request, request.params.profile_id);
      if (!(await profiles.delete(request.params.profile_id, request.user.id))) {
        throw notFound();
      }
      return { message: 'Profile deleted successfully' };
    },
  );
};
