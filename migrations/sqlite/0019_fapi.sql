-- High-security options per client (issue #17): pushed authorization requests required
-- (RFC 9126 §5), DPoP-bound access tokens required (RFC 9449 §5.2), and a security profile
-- ('fapi2' for the FAPI 2.0 Security Profile; null for none). A grant remembers the DPoP key its
-- refresh tokens are bound to (a public client's, RFC 9449 §5). Kept in step with
-- migrations/postgres/0019_fapi.sql.
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_bound BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN profile TEXT;
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
-- Resource servers a token may be issued for (RFC 8707), each with the scopes a token for it may
-- carry; the resource a grant was given for; and the clients whose tokens a client may exchange
-- (RFC 8693 policy, a JSON list of client ids).
CREATE TABLE resources (
    uri TEXT PRIMARY KEY,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE grants ADD COLUMN resource TEXT;
ALTER TABLE clients ADD COLUMN exchange_from TEXT NOT NULL DEFAULT '[]';
