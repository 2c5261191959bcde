import type { FastifyPluginAsync, RouteShorthandOptions } from 'fastify';
import { LIST_PATHS } from '../http/list-paths.js';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';

/** What every document route but the list answers: this service stores no documents. */
export const DOCUMENTS_NOT_SUPPORTED = 'documents_not_supported';
const notSupported = (): HttpError =>
  new HttpError(
    501,
    'Documents are not supported: this service stores no documents (no upload, retrieval or search); GET /api/v1/documents is always an empty page',
    DOCUMENTS_NOT_SUPPORTED,
  );

const DocumentParams = {
  type: 'object',
  required: ['document_id'],
  properties: { document_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Document ID' } },
} as const;

const ListQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 10, description: 'Maximum number of results' },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0, description: 'Number of results to skip' },
  },
} as const;
type ListQuery = { limit: number; offset: number };

/** The contract's document routes other than the list, each answered 501 (after authentication). */
const UNSUPPORTED = [
  { method: 'POST', url: '/upload', operationId: 'upload_document_api_v1_documents_upload_post', summary: 'Upload Document' },
  { method: 'POST', url: '/list', operationId: 'list_documents_post_api_v1_documents_list_post', summary: 'List Documents Post' },
  { method: 'POST', url: '/search', operationId: 'search_documents_api_v1_documents_search_post', summary: 'Search Documents' },
  {
    method: 'GET',
    url: '/stats/user',
    operationId: 'get_user_document_stats_api_v1_documents_stats_user_get',
    summary: 'Get User Document Stats',
  },
  { method: 'GET', url: '/:document_id', operationId: 'get_document_api_v1_documents__document_id__get', summary: 'Get Document' },
  {
    method: 'DELETE',
    url: '/:document_id',
    operationId: 'delete_document_api_v1_documents__document_id__delete',
    summary: 'Delete Document',
  },
  {
    method: 'POST',
    url: '/:document_id/reprocess',
    operationId: 'reprocess_document_api_v1_documents__document_id__reprocess_post',
    summary: 'Reprocess Document',
  },
  {
    method: 'GET',
    url: '/:document_id/chunks',
    operationId: 'get_document_chunks_api_v1_documents__document_id__chunks_get',
    summary: 'Get Document Chunks',
  },
  {
    method: 'GET',
    url: '/:document_id/download',
    operationId: 'download_document_api_v1_documents__document_id__download_get',
    summary: 'Download Document',
  },
] as const;

/**
 * `/api/v1/documents/*`. This service stores no documents: the list (which the Chat page
 * loads with profiles and prompts) is the contract's empty page, with the pagination
 * asked for; every other document route answers 501 `documents_not_supported`, whatever
 * the body (an upload's multipart body is read and dropped, not refused as 415).
 */
export const documentRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('onRequest', app.authenticate);
  // Bodies of any type reach the 501 (within the body limit) instead of a 415.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  // The contract's path has no trailing slash; the slashed one answers too, undocumented.
  for (const [url, hide] of LIST_PATHS) {
    app.get<{ Querystring: ListQuery }>(
      url,
      {
        prefixTrailingSlash: 'slash',
        schema: {
          hide,
          tags: ['Documents'],
          summary: 'List Documents Get',
          description: 'Always an empty page: this service stores no documents.',
          operationId: 'list_documents_get_api_v1_documents_get',
          security: bearerSecurity,
          querystring: ListQuery,
          response: { 200: { $ref: 'DocumentListResponse#' }, ...errorResponses(401) },
        },
      },
      async (request) => ({ documents: [], total_count: 0, limit: request.query.limit, offset: request.query.offset }),
    );
  }

  for (const route of UNSUPPORTED) {
    const options: RouteShorthandOptions = {
      schema: {
        tags: ['Documents'],
        summary: route.summary,
        description: 'Not supported: answers 501 `documents_not_supported` (this service stores no documents).',
        operationId: route.operationId,
        security: bearerSecurity,
        ...(route.url.includes(':document_id') ? { params: DocumentParams } : {}),
        response: { 501: { $ref: 'ErrorResponse#' }, ...errorResponses(401) },
      },
    };
    app.route({ method: route.method, url: route.url, ...options, handler: async () => Promise.reject(notSupported()) });
  }
};
