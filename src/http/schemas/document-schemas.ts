/**
 * The documents list as the contract gives it (openapi-full.json: DocumentListResponse,
 * the shape of `GET /api/v1/documents`). This service stores no documents: the list is
 * always an empty page, and the other document routes answer 501.
 */

export const DocumentListResponseSchema = {
  $id: 'DocumentListResponse',
  type: 'object',
  title: 'DocumentListResponse',
  description: 'Schema for document list response (always empty here: this service stores no documents).',
  required: ['documents', 'total_count', 'limit', 'offset'],
  properties: {
    documents: { type: 'array', maxItems: 0, items: { type: 'object' }, description: 'List of documents (none)' },
    total_count: { type: 'integer', description: 'Total number of documents (0)' },
    limit: { type: 'integer', description: 'Applied limit' },
    offset: { type: 'integer', description: 'Applied offset' },
  },
} as const;

export const DOCUMENT_SCHEMAS = [DocumentListResponseSchema] as const;
