/**
 * Profile schemas of the Chatter API contract (openapi-full.json: ProfileCreate,
 * ProfileUpdate, ProfileResponse, ProfileListResponse, ProfileDeleteResponse,
 * AvailableProvidersResponse), derived from the one list of profile fields.
 */
import { PROFILE_FIELDS } from '../../profiles/profile-fields.js';
import { createProperties, orNull as nullable, responseProperties, updateProperties } from '../../repositories/record-fields.js';

export const ProfileCreateSchema = {
  $id: 'ProfileCreate',
  type: 'object',
  title: 'ProfileCreate',
  description: 'Schema for creating a profile.',
  required: ['name'],
  properties: createProperties(PROFILE_FIELDS),
} as const;

export const ProfileUpdateSchema = {
  $id: 'ProfileUpdate',
  type: 'object',
  title: 'ProfileUpdate',
  description:
    'Schema for updating a profile: absent fields are left as they are; null clears a field that can be empty (and leaves the others).',
  properties: updateProperties(PROFILE_FIELDS),
} as const;

/** Read from the runs that used the profile (any user's, for a public one). */
const usageProperties = {
  usage_count: { type: 'integer', description: 'Chat turns run with this profile' },
  total_tokens_used: { type: 'integer', description: 'Tokens of those runs' },
  total_cost: { type: 'number', description: 'Cost of those runs (USD)' },
  last_used_at: { ...nullable({ type: 'string', format: 'date-time' }), description: 'When the profile was last used' },
} as const;

export const ProfileResponseSchema = {
  $id: 'ProfileResponse',
  type: 'object',
  title: 'ProfileResponse',
  description: 'Schema for profile response.',
  required: ['name', 'id', 'owner_id', 'usage_count', 'total_tokens_used', 'total_cost', 'created_at', 'updated_at'],
  properties: {
    ...responseProperties(PROFILE_FIELDS),
    id: { type: 'string', description: 'Profile ID' },
    owner_id: { type: 'string', description: 'Owner user ID' },
    ...usageProperties,
    created_at: { type: 'string', format: 'date-time', description: 'Creation time' },
    updated_at: { type: 'string', format: 'date-time', description: 'Last update time' },
  },
} as const;

export const ProfileListResponseSchema = {
  $id: 'ProfileListResponse',
  type: 'object',
  title: 'ProfileListResponse',
  description: 'Schema for profile list response.',
  required: ['profiles', 'total_count', 'limit', 'offset'],
  properties: {
    profiles: { type: 'array', items: { $ref: 'ProfileResponse#' }, description: 'List of profiles' },
    total_count: { type: 'integer', description: 'Total number of profiles' },
    limit: { type: 'integer', description: 'Applied limit' },
    offset: { type: 'integer', description: 'Applied offset' },
  },
} as const;

export const ProfileDeleteResponseSchema = {
  $id: 'ProfileDeleteResponse',
  type: 'object',
  title: 'ProfileDeleteResponse',
  description: 'Schema for profile delete response.',
  required: ['message'],
  properties: { message: { type: 'string', description: 'Success message' } },
} as const;

const priceSchema = {
  ...nullable({
    type: 'object',
    required: ['price_id', 'input_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'output_per_mtok', 'valid_from'],
    properties: {
      price_id: { type: 'string' },
      input_per_mtok: { type: 'number' },
      cache_read_per_mtok: { type: 'number' },
      cache_write_per_mtok: { type: 'number' },
      output_per_mtok: { type: 'number' },
      valid_from: { type: 'string' },
    },
  }),
  description: 'USD per 1M tokens this service costs the model with now; null when it has no price (cost NULL, price_unknown)',
} as const;

export const AvailableProvidersResponseSchema = {
  $id: 'AvailableProvidersResponse',
  type: 'object',
  title: 'AvailableProvidersResponse',
  description: "The providers this service knows, whether each is configured, their models and this service's prices.",
  required: ['providers', 'total_providers', 'supported_features'],
  properties: {
    providers: {
      type: 'object',
      description: 'Providers by name',
      additionalProperties: {
        type: 'object',
        required: ['name', 'display_name', 'configured', 'is_default', 'default_model', 'models', 'supported_features'],
        properties: {
          name: { type: 'string' },
          display_name: { type: 'string' },
          configured: { type: 'boolean', description: 'Credentials are set: chats can use it' },
          is_default: { type: 'boolean', description: 'The provider used when a request names none' },
          default_model: { type: 'string' },
          models: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'is_default', 'price'],
              properties: { name: { type: 'string' }, is_default: { type: 'boolean' }, price: priceSchema },
            },
          },
          supported_features: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    total_providers: { type: 'integer', description: 'Number of providers listed' },
    supported_features: {
      type: 'object',
      additionalProperties: { type: 'array', items: { type: 'string' } },
      description: 'Features supported by each provider',
    },
  },
} as const;

export const PROFILE_SCHEMAS = [
  ProfileCreateSchema,
  ProfileUpdateSchema,
  ProfileResponseSchema,
  ProfileListResponseSchema,
  ProfileDeleteResponseSchema,
  AvailableProvidersResponseSchema,
] as const;
