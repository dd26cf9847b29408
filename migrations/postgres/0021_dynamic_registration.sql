-- Dynamic client registration (RFC 7591, OIDC Dynamic Client Registration 1.0) and its
-- management (RFC 7592). Kept in step with migrations/sqlite/0021_dynamic_registration.sql.
--
-- What a client says of itself beyond the columns the CLI has always set (names and links shown
-- to people, subject type, signed userinfo, default max_age, ...), as one JSON object; null for
-- a client that says nothing more.
ALTER TABLE clients ADD COLUMN metadata TEXT;
-- The registration access token of a client registered at the endpoint (SHA-256, base64url):
-- it reads, updates and deletes that one registration. Null for clients the operator added.
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;

-- Initial access tokens (RFC 7591 §3): issued by `latchkey clients token`, each lets anyone
-- holding it register clients until it expires. Only the hash is kept.
CREATE TABLE initial_access_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The salt of each sector's pairwise subject identifiers (OIDC Core §8.1): clients that share
-- a sector identifier see the same `sub` for a user, other sectors another one.
CREATE TABLE sector_salts (
    sector     TEXT PRIMARY KEY,
    salt       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Back-channel logout (OIDC Back-Channel Logout 1.0): one row per session and client to tell,
-- written in the transaction that ends the session, so any node delivers it and nothing is
-- lost when a node stops. A node claims a due row by moving next_at (a lease), delivers the
-- logout token it then signs, and deletes the row, or sets the next try; rows past the last
-- try are dropped with an audit event.
CREATE TABLE logout_deliveries (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    next_at    BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX logout_deliveries_next ON logout_deliveries (next_at);
