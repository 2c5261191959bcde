import type { FastifyPluginAsync } from 'fastify';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { findConversationBudget, findUserBudget, setUserBudget, type BudgetView } from '../repositories/budget-reservations-repository.js';

const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;

/** numeric(20, 10) holds below 10^10 USD; bigint tokens far more than any budget needs. */
const MAX_COST_BUDGET_USD = 9_999_999_999;
const MAX_TOKEN_BUDGET = Number.MAX_SAFE_INTEGER;

/** The two budget fields of a body: null means unlimited. */
export const budgetFields = {
  token_budget: {
    ...nullable({ type: 'integer', minimum: 0, maximum: MAX_TOKEN_BUDGET }),
    description: 'Tokens (input + output) that runs may spend in all; null: unlimited',
  },
  cost_budget_usd: {
    ...nullable({ type: 'number', minimum: 0, maximum: MAX_COST_BUDGET_USD }),
    description: 'USD that runs may spend in all; null: unlimited',
  },
} as const;

const BudgetBody = {
  type: 'object',
  required: ['token_budget', 'cost_budget_usd'],
  properties: budgetFields,
} as const;
type BudgetBody = { token_budget: number | null; cost_budget_usd: number | null };

const BudgetResponse = {
  type: 'object',
  required: ['token_budget', 'cost_budget_usd', 'spent_tokens', 'spent_cost_usd', 'reserved_tokens', 'reserved_cost_usd'],
  properties: {
    user_id: { type: 'string' },
    conversation_id: { type: 'string' },
    ...budgetFields,
    spent_tokens: { type: 'integer', description: 'Tokens of the finished runs (the stored totals)' },
    spent_cost_usd: { type: 'number', description: 'USD of the finished runs (the stored totals)' },
    reserved_tokens: {
      type: 'integer',
      description: 'Tokens reserved by the model calls of runs in flight (worst cases, or actuals once settled)',
    },
    reserved_cost_usd: { type: 'number', description: 'USD reserved by the model calls of runs in flight' },
  },
} as const;

const UserParams = {
  type: 'object',
  required: ['user_id'],
  properties: { user_id: { type: 'string', minLength: 1, maxLength: 128, description: 'User ID' } },
} as const;
const ConversationParams = {
  type: 'object',
  required: ['conversation_id'],
  properties: { conversation_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Conversation ID' } },
} as const;

const present = (view: BudgetView, id: { user_id: string } | { conversation_id: string }) => ({ ...id, ...view });

/**
 * Budgets (native routes): superusers read and set a user's budget at
 * `/api/v1/admin/users/{user_id}/budget` (anyone else: 403 and an `access_denied` event,
 * like every superuser-only route); a conversation's owner reads its budget at
 * `/api/v1/conversations/{id}/budget` (set with `PUT /api/v1/conversations/{id}`).
 * Each answer shows what finished runs spent and what runs in flight hold.
 */
export const budgetRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('onRequest', app.authenticate);

  const requireSuperuser = async (request: Parameters<typeof app.authenticate>[0]): Promise<void> => {
    if (!request.user.isSuperuser) {
      await app.securityEvents.record(request, { type: 'access_denied', userId: request.user.id, reason: 'admin_requires_superuser' });
      throw new HttpError(403, 'Only superusers may manage budgets', 'forbidden');
    }
  };

  app.get<{ Params: { user_id: string } }>(
    '/admin/users/:user_id/budget',
    {
      onRequest: requireSuperuser,
      schema: {
        tags: ['Admin'],
        summary: 'Get User Budget',
        security: bearerSecurity,
        params: UserParams,
        response: { 200: BudgetResponse, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const view = await findUserBudget(app.db.pool, request.params.user_id);
      if (view === null) throw new HttpError(404, 'User not found', 'not_found');
      return present(view, { user_id: request.params.user_id });
    },
  );

  app.put<{ Params: { user_id: string }; Body: BudgetBody }>(
    '/admin/users/:user_id/budget',
    {
      onRequest: requireSuperuser,
      schema: {
        tags: ['Admin'],
        summary: 'Set User Budget',
        description: 'Sets both budgets of the user (null: unlimited). Runs already in flight keep the scope they started with.',
        security: bearerSecurity,
        params: UserParams,
        body: BudgetBody,
        response: { 200: BudgetResponse, ...errorResponses(401, 403, 404, 413) },
      },
    },
    async (request) => {
      const view = await setUserBudget(app.db.pool, request.params.user_id, {
        tokenBudget: request.body.token_budget,
        costBudgetUsd: request.body.cost_budget_usd,
      });
      if (view === null) throw new HttpError(404, 'User not found', 'not_found');
      return present(view, { user_id: request.params.user_id });
    },
  );

  app.get<{ Params: { conversation_id: string } }>(
    '/conversations/:conversation_id/budget',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Get Conversation Budget',
        security: bearerSecurity,
        params: ConversationParams,
        response: { 200: BudgetResponse, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const view = await findConversationBudget(app.db.pool, request.params.conversation_id, request.user.id);
      if (view === null) throw new HttpError(404, 'Conversation not found', 'not_found');
      return present(view, { conversation_id: request.params.conversation_id });
    },
  );
};
