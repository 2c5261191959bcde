-- Auth sessions. A session is a family of refresh tokens: each refresh rotates the
-- token within its family, and presenting a rotated-out token again revokes the whole
-- family (the token was stolen or replayed). Access tokens carry their family id, so
-- logout can end a session; a logged-out access token is listed until it expires.

ALTER TABLE refresh_tokens ADD COLUMN family_id text;
UPDATE refresh_tokens SET family_id = id WHERE family_id IS NULL;
ALTER TABLE refresh_tokens ALTER COLUMN family_id SET NOT NULL;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE revoked_access_tokens (
  jti         text PRIMARY KEY,
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);

