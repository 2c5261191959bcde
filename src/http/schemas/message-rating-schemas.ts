/** The contract's message rating schemas (openapi-full.json: MessageRatingUpdate, MessageRatingResponse). */

export const MessageRatingUpdateSchema = {
  $id: 'MessageRatingUpdate',
  type: 'object',
  title: 'MessageRatingUpdate',
  description: 'Schema for updating message rating.',
  required: ['rating'],
  properties: { rating: { type: 'number', minimum: 0, maximum: 5, title: 'Rating', description: 'Rating value from 0.0 to 5.0' } },
} as const;

export type MessageRatingUpdateBody = { rating: number };

export const MessageRatingResponseSchema = {
  $id: 'MessageRatingResponse',
  type: 'object',
  title: 'MessageRatingResponse',
  description: 'Response schema for message rating update.',
  required: ['message', 'rating', 'rating_count'],
  properties: {
    message: { type: 'string', description: 'Rating update result message' },
    rating: { type: 'number', description: 'The message’s rating: the average of every rating it was given' },
    rating_count: { type: 'integer', description: 'Total number of ratings' },
  },
} as const;

export const MESSAGE_RATING_SCHEMAS = [MessageRatingUpdateSchema, MessageRatingResponseSchema] as const;
