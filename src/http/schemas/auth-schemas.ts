/**
 * Authentication schemas of the Chatter API contract (see common-schemas.ts). Request
 * schemas add bounds the contract leaves open (lengths, the username's characters);
 * response schemas keep the contract's fields and may add some.
 */

const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;

export const UserCreateSchema = {
  $id: 'UserCreate',
  type: 'object',
  title: 'UserCreate',
  description: 'Schema for user creation (alias for UserRegistration).',
  required: ['email', 'username', 'password'],
  properties: {
    email: { type: 'string', format: 'email', maxLength: 254, title: 'Email', description: 'User email address' },
    username: {
      type: 'string',
      minLength: 3,
      maxLength: 50,
      // No '@': a login name with one is looked up as an email.
      pattern: '^[A-Za-z0-9_.-]+$',
      title: 'Username',
      description: 'Username (letters, digits, `_`, `.`, `-`)',
    },
    full_name: { ...nullable({ type: 'string', maxLength: 255 }), title: 'Full Name', description: 'Full name' },
    bio: { ...nullable({ type: 'string', maxLength: 1000 }), title: 'Bio', description: 'User bio' },
    avatar_url: { ...nullable({ type: 'string', maxLength: 500 }), title: 'Avatar Url', description: 'Avatar URL' },
    phone_number: { ...nullable({ type: 'string', maxLength: 20 }), title: 'Phone Number', description: 'Phone number' },
    password: {
      type: 'string',
      minLength: 6,
      maxLength: 128,
      title: 'Password',
      description:
        'Password: at least 8 characters, not only spaces, not containing the username or the email, not a common password (422 naming the rule)',
    },
  },
} as const;

export type UserCreateBody = {
  email: string;
  username: string;
  password: string;
  full_name?: string | null;
  bio?: string | null;
  avatar_url?: string | null;
  phone_number?: string | null;
};

export const UserLoginSchema = {
  $id: 'UserLogin',
  type: 'object',
  title: 'UserLogin',
  description: 'Schema for user login: the email or the username (an email is accepted in `username` too), and the password.',
  required: ['password'],
  properties: {
    email: { ...nullable({ type: 'string', format: 'email', maxLength: 254 }), title: 'Email', description: 'User email address' },
    username: { ...nullable({ type: 'string', minLength: 3, maxLength: 254 }), title: 'Username', description: 'Username' },
    password: { type: 'string', minLength: 1, maxLength: 1024, title: 'Password', description: 'Password' },
    remember_me: { type: 'boolean', default: false, title: 'Remember Me', description: 'Remember login' },
  },
} as const;

export type UserLoginBody = { email?: string | null; username?: string | null; password: string; remember_me?: boolean };

export const UserResponseSchema = {
  $id: 'UserResponse',
  type: 'object',
  title: 'UserResponse',
  description: 'Schema for user response.',
  required: ['email', 'username', 'id', 'is_active', 'is_verified', 'is_superuser', 'created_at', 'updated_at'],
  properties: {
    email: { type: 'string', format: 'email', title: 'Email', description: 'User email address' },
    username: { type: 'string', title: 'Username', description: 'Username' },
    full_name: { ...nullable({ type: 'string' }), title: 'Full Name', description: 'Full name' },
    bio: { ...nullable({ type: 'string' }), title: 'Bio', description: 'User bio' },
    avatar_url: { ...nullable({ type: 'string' }), title: 'Avatar Url', description: 'Avatar URL' },
    phone_number: { ...nullable({ type: 'string' }), title: 'Phone Number', description: 'Phone number' },
    id: { type: 'string', title: 'Id', description: 'User ID' },
    is_active: { type: 'boolean', title: 'Is Active', description: 'Is user active' },
    is_verified: { type: 'boolean', title: 'Is Verified', description: 'Is user email verified' },
    is_superuser: { type: 'boolean', title: 'Is Superuser', description: 'Is user a superuser' },
    default_llm_provider: { ...nullable({ type: 'string' }), title: 'Default Llm Provider', description: 'Default LLM provider' },
    default_profile_id: { ...nullable({ type: 'string' }), title: 'Default Profile Id', description: 'Default profile ID' },
    daily_message_limit: { ...nullable({ type: 'integer' }), title: 'Daily Message Limit', description: 'Daily message limit' },
    monthly_message_limit: { ...nullable({ type: 'integer' }), title: 'Monthly Message Limit', description: 'Monthly message limit' },
    max_file_size_mb: { ...nullable({ type: 'integer' }), title: 'Max File Size Mb', description: 'Max file size in MB' },
    api_key_name: { ...nullable({ type: 'string' }), title: 'Api Key Name', description: 'API key name' },
    created_at: { type: 'string', format: 'date-time', title: 'Created At', description: 'Account creation date' },
    updated_at: { type: 'string', format: 'date-time', title: 'Updated At', description: 'Last update date' },
    last_login_at: { ...nullable({ type: 'string', format: 'date-time' }), title: 'Last Login At', description: 'Last login date' },
  },
} as const;

export const TokenResponseSchema = {
  $id: 'TokenResponse',
  type: 'object',
  title: 'TokenResponse',
  description: 'Schema for authentication token response.',
  required: ['access_token', 'expires_in', 'user'],
  properties: {
    access_token: { type: 'string', title: 'Access Token', description: 'JWT access token' },
    refresh_token: {
      ...nullable({ type: 'string' }),
      title: 'Refresh Token',
      description: 'Refresh token (also set as an HttpOnly cookie)',
    },
    token_type: { type: 'string', default: 'bearer', title: 'Token Type', description: 'Token type' },
    expires_in: { type: 'integer', title: 'Expires In', description: 'Token expiration time in seconds' },
    user: { $ref: 'UserResponse#', description: 'User information' },
  },
} as const;

export const TokenRefreshResponseSchema = {
  $id: 'TokenRefreshResponse',
  type: 'object',
  title: 'TokenRefreshResponse',
  description: 'Schema for token refresh response.',
  required: ['access_token', 'expires_in'],
  properties: {
    access_token: { type: 'string', title: 'Access Token', description: 'New access token' },
    refresh_token: {
      ...nullable({ type: 'string' }),
      title: 'Refresh Token',
      description: 'New refresh token (also set as an HttpOnly cookie); the one sent is no longer valid',
    },
    token_type: { type: 'string', default: 'bearer', title: 'Token Type', description: 'Token type' },
    expires_in: { type: 'integer', title: 'Expires In', description: 'Token expiration time in seconds' },
  },
} as const;

/** Not in the contract (its refresh route declares no body): the refresh token for clients without cookies. */
export const TokenRefreshRequestSchema = {
  $id: 'TokenRefreshRequest',
  type: 'object',
  title: 'TokenRefreshRequest',
  description: 'The refresh token, when it is not sent as the `refresh_token` cookie.',
  properties: {
    refresh_token: { type: 'string', minLength: 1, maxLength: 512, title: 'Refresh Token' },
  },
} as const;

export type TokenRefreshBody = { refresh_token?: string } | undefined | null;

export const LogoutResponseSchema = {
  $id: 'LogoutResponse',
  type: 'object',
  title: 'LogoutResponse',
  description: 'Schema for logout response.',
  required: ['message'],
  properties: { message: { type: 'string', title: 'Message', description: 'Success message' } },
} as const;

export const APIKeyCreateSchema = {
  $id: 'APIKeyCreate',
  type: 'object',
  title: 'APIKeyCreate',
  description: 'Schema for API key creation.',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 100, title: 'Name', description: 'API key name' } },
} as const;

export type APIKeyCreateBody = { name: string };

export const APIKeyResponseSchema = {
  $id: 'APIKeyResponse',
  type: 'object',
  title: 'APIKeyResponse',
  description: 'Schema for API key response. `api_key` is the key itself only in the answer that created it; lists show its prefix.',
  required: ['id', 'api_key', 'api_key_name'],
  properties: {
    id: { type: 'string', title: 'Id', description: 'Id of this key (what `DELETE /api/v1/auth/api-key?key_id=` takes)' },
    api_key: { type: 'string', title: 'Api Key', description: 'API key (shown once), or its masked prefix in lists' },
    api_key_name: { type: 'string', title: 'Api Key Name', description: 'API key name' },
    key_id: { type: 'string', description: 'Id of this key, the same as `id`' },
    user_id: { type: 'string', description: 'The owner' },
    key_prefix: { type: 'string', description: 'The first characters of the key' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { ...nullable({ type: 'string', format: 'date-time' }) },
  },
} as const;

export const APIKeyRevokeResponseSchema = {
  $id: 'APIKeyRevokeResponse',
  type: 'object',
  title: 'APIKeyRevokeResponse',
  description: 'Schema for API key revoke response.',
  required: ['message'],
  properties: {
    message: { type: 'string', title: 'Message', description: 'Success message' },
    revoked: { type: 'integer', description: 'How many keys were revoked' },
  },
} as const;

export const UserUpdateSchema = {
  $id: 'UserUpdate',
  type: 'object',
  title: 'UserUpdate',
  description: 'Schema for user profile updates: fields left out stay as they are; null clears one (not the email).',
  properties: {
    email: { type: 'string', format: 'email', maxLength: 254, title: 'Email', description: 'User email address' },
    full_name: { ...nullable({ type: 'string', maxLength: 255 }), title: 'Full Name', description: 'Full name' },
    bio: { ...nullable({ type: 'string', maxLength: 1000 }), title: 'Bio', description: 'User bio' },
    avatar_url: { ...nullable({ type: 'string', maxLength: 500 }), title: 'Avatar Url', description: 'Avatar URL' },
    phone_number: { ...nullable({ type: 'string', maxLength: 20 }), title: 'Phone Number', description: 'Phone number' },
    default_llm_provider: {
      ...nullable({ type: 'string', enum: ['local', 'openai', 'anthropic'] }),
      title: 'Default Llm Provider',
      description: 'Default LLM provider',
    },
    default_profile_id: {
      ...nullable({ type: 'string', maxLength: 128 }),
      title: 'Default Profile Id',
      description: 'Default profile ID (accepted; profiles are not stored by this service yet)',
    },
  },
} as const;

export type UserUpdateBody = {
  email?: string | null;
  full_name?: string | null;
  bio?: string | null;
  avatar_url?: string | null;
  phone_number?: string | null;
  default_llm_provider?: string | null;
  default_profile_id?: string | null;
};

export const PasswordChangeSchema = {
  $id: 'PasswordChange',
  type: 'object',
  title: 'PasswordChange',
  description: 'Schema for password change.',
  required: ['current_password', 'new_password'],
  properties: {
    current_password: { type: 'string', minLength: 1, maxLength: 1024, title: 'Current Password', description: 'Current password' },
    new_password: {
      type: 'string',
      minLength: 6,
      maxLength: 128,
      title: 'New Password',
      description: 'New password, under the same policy as at registration',
    },
  },
} as const;

export type PasswordChangeBody = { current_password: string; new_password: string };

const messageResponse = (id: string, description: string) =>
  ({
    $id: id,
    type: 'object',
    title: id,
    description,
    required: ['message'],
    properties: { message: { type: 'string', title: 'Message', description: 'Success message' } },
  }) as const;

export const PasswordChangeResponseSchema = messageResponse('PasswordChangeResponse', 'Schema for password change response.');
export const AccountDeactivateResponseSchema = messageResponse('AccountDeactivateResponse', 'Schema for account deactivation response.');

export const AUTH_SCHEMAS = [
  UserUpdateSchema,
  PasswordChangeSchema,
  PasswordChangeResponseSchema,
  AccountDeactivateResponseSchema,
  UserCreateSchema,
  UserLoginSchema,
  UserResponseSchema,
  TokenResponseSchema,
  TokenRefreshResponseSchema,
  TokenRefreshRequestSchema,
  LogoutResponseSchema,
  APIKeyCreateSchema,
  APIKeyResponseSchema,
  APIKeyRevokeResponseSchema,
] as const;
