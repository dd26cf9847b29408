-- Signing algorithms per client and one active and one next key per algorithm.
-- Kept in step with migrations/sqlite/0002_signing_algorithms.sql.

-- OIDC Dynamic Client Registration §2: the alg of the client's ID tokens (and, here, of its
-- access tokens too). Clients registered before this migration keep RS256.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';

-- The durable store arbitrates key changes between nodes: two racing rotations cannot both
-- leave an active (or a next) key for the same algorithm.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (alg) WHERE state = 'next';
