-- Fewer pages written per code exchange and per refresh. Kept in step with
-- migrations/postgres/0026_refresh_tokens_lean.sql.
--
-- A refresh token is found by its hash, so the table is keyed by it (WITHOUT ROWID): one
-- B-tree instead of a rowid table and a separate index on the hash. Its rows are small, which
-- is what such a table suits.
--
-- The purge looks for used tokens (`used_at < cutoff`), and a token is unused for most of its
-- life: the index on `used_at` holds used tokens only, so issuing a token writes nothing there.
CREATE TABLE refresh_tokens_keyed (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants (id),
    created_at BIGINT NOT NULL,
    used_at    BIGINT
) WITHOUT ROWID;
INSERT INTO refresh_tokens_keyed (token_hash, grant_id, created_at, used_at)
    SELECT token_hash, grant_id, created_at, used_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_keyed RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at) WHERE used_at IS NOT NULL;
