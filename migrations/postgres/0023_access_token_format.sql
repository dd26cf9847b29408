-- What a client's access tokens are (`clients add --access-token-format`): `jwt` (RFC 9068,
-- verified by resource servers on their own) or `opaque` (random handles the provider keeps,
-- hashed, in the ephemeral store until they expire). Kept in step with
-- migrations/sqlite/0023_access_token_format.sql.
ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'jwt';
