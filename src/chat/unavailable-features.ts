import { RequestValidationError, type ValidationItem } from '../http/errors.js';

/** The chat request's switches for what this service does not have (it stores no documents). */
export type FeatureRequest = {
  readonly enable_retrieval?: boolean | undefined;
  readonly enable_web_search?: boolean | undefined;
  readonly document_ids?: readonly string[] | null | undefined;
};

const refusal = (field: string, msg: string): ValidationItem => ({ loc: ['body', field], msg, type: 'value_error.unsupported' });

/**
 * Refuses a chat request that asks for retrieval, web search or documents: answering it
 * without them would pass off a plain chat as a grounded one. Off (false, null, empty)
 * is accepted: the frontend sends them so.
 *
 * @throws RequestValidationError (422) naming each field asked for.
 */
export const refuseUnavailableFeatures = (request: FeatureRequest): void => {
  const refused: ValidationItem[] = [];
  if (request.enable_retrieval === true) {
    refused.push(refusal('enable_retrieval', 'Retrieval is not available: this service stores no documents'));
  }
  if (request.enable_web_search === true) {
    refused.push(refusal('enable_web_search', 'Web search is not available in this service'));
  }
  if (request.document_ids !== undefined && request.document_ids !== null && request.document_ids.length > 0) {
    refused.push(refusal('document_ids', 'Documents are not available: this service stores no documents'));
  }
  if (refused.length > 0) {
    throw new RequestValidationError(refused);
  }
};
