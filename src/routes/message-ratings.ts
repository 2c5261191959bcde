import type { FastifyPluginAsync } from 'fastify';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import type { MessageRatingUpdateBody } from '../http/schemas/message-rating-schemas.js';
import { createMessagesRepository } from '../repositories/messages-repository.js';

const RatingParams = {
  type: 'object',
  required: ['conversation_id', 'message_id'],
  properties: {
    conversation_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Conversation ID' },
    message_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Message ID' },
  },
} as const;
type RatingParams = { conversation_id: string; message_id: string };

/**
 * `PATCH /api/v1/conversations/{conversation_id}/messages/{message_id}/rating`: the
 * conversation's owner rates one of its messages. Anyone else, a deleted conversation or
 * a message of another conversation answers 404 (superusers' read access does not extend
 * to rating).
 */
export const messageRatingRoutes: FastifyPluginAsync = async (app) => {
  const messages = createMessagesRepository(app.db.pool);

  app.addHook('onRequest', app.authenticate);

  app.patch<{ Params: RatingParams; Body: MessageRatingUpdateBody }>(
    '/:conversation_id/messages/:message_id/rating',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Update Message Rating',
        description:
          'Adds a rating (0 to 5) to a message of one of the caller’s conversations: `rating` becomes the average of every rating given to the message, `rating_count` their number (one atomic update).',
        operationId: 'update_message_rating_api_v1_conversations__conversation_id__messages__message_id__rating_patch',
        security: bearerSecurity,
        params: RatingParams,
        body: { $ref: 'MessageRatingUpdate#' },
        response: { 200: { $ref: 'MessageRatingResponse#' }, ...errorResponses(401, 404, 413) },
      },
    },
    async (request) => {
      const { conversation_id: conversationId, message_id: messageId } = request.params;
      const rated = await messages.rate(conversationId, messageId, request.user.id, request.body.rating);
      if (rated === null) {
        await app.securityEvents.recordHidden(request, { resource: 'message', id: messageId, exists: await messages.exists(messageId) });
        throw new HttpError(404, 'Message not found', 'not_found');
      }
      return { message: 'Message rating updated successfully', rating: rated.rating, rating_count: rated.rating_count };
    },
  );
};
