import type { FastifyPluginAsync } from 'fastify';
import type { AuthServices } from '../auth/auth-services.js';
import { generateApiKey, maskApiKey } from '../auth/opaque-tokens.js';
import { HttpError } from '../http/errors.js';
import type { APIKeyCreateBody } from '../http/schemas/auth-schemas.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { TooManyApiKeysError, type ApiKeyRow } from '../repositories/api-keys-repository.js';

/**
 * The contract's `APIKeyResponse`. Its `id` is the key's id (what revoking one key takes;
 * the original said "User ID", which left a list of keys with one id for all of them);
 * `key_id` repeats it for clients of the earlier shape, `user_id` names the owner.
 */
const toApiKeyResponse = (key: ApiKeyRow, plaintext?: string) => ({
  id: key.id,
  user_id: key.user_id,
  api_key: plaintext ?? maskApiKey(key.key_prefix),
  api_key_name: key.name,
  key_id: key.id,
  key_prefix: key.key_prefix,
  created_at: key.created_at,
  last_used_at: key.last_used_at,
});

/**
 * `/api/v1/auth/api-key` (create, revoke) and `/api/v1/auth/api-keys` (list), per the
 * Chatter contract. A key is shown once, when created; the database keeps its SHA-256.
 */
export const apiKeyRoutes: FastifyPluginAsync<{ readonly services: AuthServices }> = async (app, { services }) => {
  const { apiKeys, securityEvents } = services;

  app.post<{ Body: APIKeyCreateBody }>(
    '/api-key',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Create Api Key',
        description:
          'Creates an API key (`chk_…`, usable as `Authorization: Bearer`). The key is in this answer only; the service keeps a hash. Needs an access token, not another API key.',
        operationId: 'create_api_key_api_v1_auth_api_key_post',
        security: bearerSecurity,
        body: { $ref: 'APIKeyCreate#' },
        response: { 200: { $ref: 'APIKeyResponse#' }, ...errorResponses(401, 403, 409) },
      },
    },
    async (request) => {
      const { user, credential } = request;
      if (credential.kind !== 'access_token') {
        await securityEvents.record(request, { type: 'access_denied', userId: user.id, reason: 'api_key_cannot_create_api_key' });
        throw new HttpError(403, 'API keys can only be created with an access token (log in)', 'forbidden');
      }
      const generated = generateApiKey();
      let row: ApiKeyRow;
      try {
        row = await apiKeys.create({ userId: user.id, name: request.body.name, hash: generated.hash, prefix: generated.prefix });
      } catch (error) {
        if (error instanceof TooManyApiKeysError) {
          throw new HttpError(409, 'Too many active API keys; revoke one first', 'too_many_api_keys');
        }
        throw error;
      }
      await securityEvents.record(request, {
        type: 'api_key_created',
        userId: user.id,
        details: { key_id: row.id, key_prefix: row.key_prefix },
      });
      return toApiKeyResponse(row, generated.key);
    },
  );

  app.delete<{ Querystring: { key_id?: string } }>(
    '/api-key',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Revoke Api Key',
        description: 'Revokes the API key named by `key_id`, or, without it, every active API key of the user.',
        operationId: 'revoke_api_key_api_v1_auth_api_key_delete',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          properties: { key_id: { type: 'string', minLength: 1, maxLength: 64, description: 'The key to revoke (default: all)' } },
        },
        response: { 200: { $ref: 'APIKeyRevokeResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const { user } = request;
      const revoked = await apiKeys.revoke(user.id, request.query.key_id);
      if (revoked.length === 0) {
        throw new HttpError(404, 'API key not found', 'not_found');
      }
      await securityEvents.record(request, {
        type: 'api_key_revoked',
        userId: user.id,
        details: { key_ids: revoked.map((key) => key.id).join(','), count: revoked.length },
      });
      return { message: revoked.length === 1 ? 'API key revoked' : `${revoked.length} API keys revoked`, revoked: revoked.length };
    },
  );

  app.get(
    '/api-keys',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'List Api Keys',
        description: "The user's active API keys, newest first; `api_key` holds the key's prefix, never the key.",
        operationId: 'list_api_keys_api_v1_auth_api_keys_get',
        security: bearerSecurity,
        response: { 200: { type: 'array', items: { $ref: 'APIKeyResponse#' } }, ...errorResponses(401) },
      },
    },
    async (request) => (await apiKeys.listActive(request.user.id)).map((key) => toApiKeyResponse(key)),
  );
};
