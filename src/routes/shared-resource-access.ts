import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';

/** A repository of per-user resources that public ones make readable by every user. */
type SharedResources<Row extends { owner_id: string }> = {
  readonly exists: (id: string) => Promise<boolean>;
  readonly findVisible: (id: string, userId: string) => Promise<Row | null>;
};

/**
 * How the routes of a per-user resource with public rows (profiles, prompts) find one:
 * `visible` (the caller's own or a public one) to read, `owned` (the caller's own) to
 * change. Anything else is the same 404 with the same `access_denied` event whether the id
 * is missing or another user's, so nothing reveals whether it exists.
 */
export const sharedResourceAccess = <Row extends { owner_id: string }>(
  app: FastifyInstance,
  options: { resource: string; label: string; repository: SharedResources<Row> },
) => {
  const notFound = (): HttpError => new HttpError(404, `${options.label} not found`, 'not_found');
  const hidden = async (request: FastifyRequest, id: string): Promise<never> => {
    await app.securityEvents.recordHidden(request, { resource: options.resource, id, exists: await options.repository.exists(id) });
    throw notFound();
  };
  return {
    notFound,
    visible: async (request: FastifyRequest, id: string): Promise<Row> =>
      (await options.repository.findVisible(id, request.user.id)) ?? hidden(request, id),
    owned: async (request: FastifyRequest, id: string): Promise<Row> => {
      const row = await options.repository.findVisible(id, request.user.id);
      return row !== null && row.owner_id === request.user.id ? row : hidden(request, id);
    },
  };
};
