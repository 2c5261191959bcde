import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { LIST_PATHS } from '../http/list-paths.js';
import { RequestValidationError, type ValidationItem } from '../http/errors.js';
import { sharedResourceAccess } from './shared-resource-access.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { PROMPT_CATEGORIES, PROMPT_TYPES, type PromptCategory, type PromptType } from '../prompts/prompt-fields.js';
import { checkTemplate } from '../prompts/prompt-template.js';
import { createTokenCounter } from '../providers/token-counter.js';
import {
  createPromptsRepository,
  PROMPT_SORT_COLUMNS,
  type PromptDerived,
  type PromptRow,
  type PromptSortColumn,
} from '../repositories/prompts-repository.js';

const MAX_PAGE = 100;
const MAX_OFFSET = 1_000_000_000;

const PromptParams = {
  type: 'object',
  required: ['prompt_id'],
  properties: { prompt_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Prompt ID' } },
} as const;
type PromptParams = { prompt_id: string };

const ListQuery = {
  type: 'object',
  properties: {
    prompt_type: { type: 'string', enum: PROMPT_TYPES, description: 'Filter by prompt type' },
    category: { type: 'string', enum: PROMPT_CATEGORIES, description: 'Filter by category' },
    tags: {
      type: 'array',
      items: { type: 'string', maxLength: 100 },
      maxItems: 20,
      description: 'Prompts carrying all these tags (`?tags=a&tags=b`)',
    },
    is_public: { type: 'boolean', description: "true: public prompts only (yours and others'); false: your private ones" },
    is_chain: { type: 'boolean', description: 'Filter by chain status' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50, description: 'Maximum number of results' },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0, description: 'Number of results to skip' },
    sort_by: { type: 'string', enum: PROMPT_SORT_COLUMNS, default: 'created_at', description: 'Sort field' },
    sort_order: { type: 'string', enum: ['asc', 'desc'], default: 'desc', description: 'Sort order' },
  },
} as const;
type ListQuery = {
  prompt_type?: PromptType;
  category?: PromptCategory;
  tags?: string[];
  is_public?: boolean;
  is_chain?: boolean;
  limit: number;
  offset: number;
  sort_by: PromptSortColumn;
  sort_order: 'asc' | 'desc';
};

type PromptBody = Record<string, unknown>;

/** The template-relevant fields of a prompt as a write would leave it. */
type TemplateState = {
  content: string;
  template_format: string;
  variables: readonly string[] | null;
  required_variables: readonly string[] | null;
  max_length: number | null;
  min_length: number | null;
};

const lengthIssues = (state: TemplateState): ValidationItem[] => {
  const issues: ValidationItem[] = [];
  const length = [...state.content].length;
  if (state.min_length !== null && state.max_length !== null && state.min_length > state.max_length) {
    issues.push({ loc: ['body', 'min_length'], msg: 'min_length must not exceed max_length', type: 'prompt.length_bounds' });
  } else if (state.max_length !== null && length > state.max_length) {
    issues.push({
      loc: ['body', 'content'],
      msg: `content is ${length} characters, more than max_length ${state.max_length}`,
      type: 'prompt.too_long',
    });
  } else if (state.min_length !== null && length < state.min_length) {
    issues.push({
      loc: ['body', 'content'],
      msg: `content is ${length} characters, fewer than min_length ${state.min_length}`,
      type: 'prompt.too_short',
    });
  }
  return issues;
};

/**
 * `/api/v1/prompts/*`: the caller's prompt templates (create, list, read, update, delete)
 * and every user's public ones (list, read). A template's placeholders and its declared
 * variables must agree (422 naming the variable). Another user's private prompt, and any
 * write to a prompt the caller does not own, answers like a missing one (404).
 */
export const promptRoutes: FastifyPluginAsync = async (app) => {
  const prompts = createPromptsRepository(app.db.pool);
  const tokens = createTokenCounter();

  app.addHook('onRequest', app.authenticate);

  /** Checks the template as the write would leave it: the variables to store and what the content derives, or a 422. */
  const checked = (state: TemplateState): { variables: string[]; derived: PromptDerived } => {
    const { variables, issues } = checkTemplate({
      content: state.content,
      format: state.template_format,
      variables: state.variables,
      requiredVariables: state.required_variables,
    });
    const detail: ValidationItem[] = [
      ...issues.map((issue) => ({ loc: ['body', issue.field], msg: issue.message, type: issue.type })),
      ...lengthIssues(state),
    ];
    if (detail.length > 0) {
      throw new RequestValidationError(detail);
    }
    return {
      variables,
      derived: { contentHash: createHash('sha256').update(state.content).digest('hex'), estimatedTokens: tokens.count(state.content) },
    };
  };

  const { notFound, visible, owned } = sharedResourceAccess(app, { resource: 'prompt', label: 'Prompt', repository: prompts });

  // The contract's path has no trailing slash; the slashed one answers too, undocumented.
  for (const [url, hide] of LIST_PATHS) {
    app.get<{ Querystring: ListQuery }>(
      url,
      {
        prefixTrailingSlash: 'slash',
        schema: {
          hide,
          tags: ['Prompts'],
          summary: 'List Prompts',
          description: "The caller's prompts and every user's public ones, filtered, sorted and paginated.",
          operationId: 'list_prompts_api_v1_prompts_get',
          security: bearerSecurity,
          querystring: ListQuery,
          response: { 200: { $ref: 'PromptListResponse#' }, ...errorResponses(401) },
        },
      },
      async (request) => {
        const query = request.query;
        const { rows, total } = await prompts.list(
          {
            userId: request.user.id,
            promptType: query.prompt_type,
            category: query.category,
            tags: query.tags,
            isPublic: query.is_public,
            isChain: query.is_chain,
          },
          { limit: query.limit, offset: query.offset, sortBy: query.sort_by, sortOrder: query.sort_order },
        );
        return { prompts: rows, total_count: total, limit: query.limit, offset: query.offset };
      },
    );
  }

  app.post<{ Body: PromptBody }>(
    '/',
    {
      schema: {
        tags: ['Prompts'],
        summary: 'Create Prompt',
        description:
          'Creates a prompt template; its placeholders and `variables` must agree (absent `variables`: taken from the template).',
        operationId: 'create_prompt_api_v1_prompts__post',
        security: bearerSecurity,
        body: { $ref: 'PromptCreate#' },
        response: { 201: { $ref: 'PromptResponse#' }, ...errorResponses(401, 413) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { variables, derived } = checked({
        content: body['content'] as string,
        template_format: (body['template_format'] as string | undefined) ?? 'f-string',
        variables: (body['variables'] as string[] | null | undefined) ?? null,
        required_variables: (body['required_variables'] as string[] | null | undefined) ?? null,
        max_length: (body['max_length'] as number | null | undefined) ?? null,
        min_length: (body['min_length'] as number | null | undefined) ?? null,
      });
      return reply.status(201).send(await prompts.create(request.user.id, { ...body, variables }, derived));
    },
  );

  app.get<{ Params: PromptParams }>(
    '/:prompt_id',
    {
      schema: {
        tags: ['Prompts'],
        summary: 'Get Prompt',
        description: "One of the caller's prompts, or another user's public one.",
        operationId: 'get_prompt_api_v1_prompts__prompt_id__get',
        security: bearerSecurity,
        params: PromptParams,
        response: { 200: { $ref: 'PromptResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => visible(request, request.params.prompt_id),
  );

  app.put<{ Params: PromptParams; Body: PromptBody }>(
    '/:prompt_id',
    {
      schema: {
        tags: ['Prompts'],
        summary: 'Update Prompt',
        description:
          'Changes the fields present in the body (owner only); the template as it results must agree with its variables (`variables: null` takes them from the template). A content change moves `version` by one.',
        operationId: 'update_prompt_api_v1_prompts__prompt_id__put',
        security: bearerSecurity,
        params: PromptParams,
        body: { $ref: 'PromptUpdate#' },
        response: { 200: { $ref: 'PromptResponse#' }, ...errorResponses(401, 404, 413) },
      },
    },
    async (request) => {
      const { prompt_id: id } = request.params;
      await owned(request, id);
      const body = request.body;
      /** The body's value where it changes the field (null on a non-nullable one leaves it), else the row's. */
      const merged = <T>(row: PromptRow, name: keyof TemplateState, nullable: boolean): T =>
        (body[name] === undefined || (body[name] === null && !nullable) ? row[name] : body[name]) as T;
      const row = await prompts.update(id, request.user.id, (current) => {
        const { variables, derived } = checked({
          content: merged(current, 'content', false),
          template_format: merged(current, 'template_format', false),
          variables: merged(current, 'variables', true),
          required_variables: merged(current, 'required_variables', true),
          max_length: merged(current, 'max_length', true),
          min_length: merged(current, 'min_length', true),
        });
        return { changes: { ...body, variables }, derived };
      });
      if (row === null) {
        throw notFound(); // deleted meanwhile
      }
      return row;
    },
  );

  app.delete<{ Params: PromptParams }>(
    '/:prompt_id',
    {
      schema: {
        tags: ['Prompts'],
        summary: 'Delete Prompt',
        description: 'Deletes the prompt (owner only). Runs that used it keep its id.',
        operationId: 'delete_prompt_api_v1_prompts__prompt_id__delete',
        security: bearerSecurity,
        params: PromptParams,
        response: { 200: { $ref: 'PromptDeleteResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      await owned(request, request.params.prompt_id);
      if (!(await prompts.delete(request.params.prompt_id, request.user.id))) {
        throw notFound();
      }
      return { message: 'Prompt deleted successfully' };
    },
  );
};
