-- High-security options per client (issue #17): pushed authorization requests required
-- (RFC 9126 §5), DPoP-bound access tokens required (RFC 9449 §5.2), and a security profile
-- ('fapi2' for the FAPI 2.0 Security Profile; null for none). A grant remembers the DPoP key its
-- refresh tokens are bound to (a public client's, RFC 9449 §5). Kept in step with
-- migrations/postgres/0019_fapi.sql.
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_bound BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN profile TEXT;
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
