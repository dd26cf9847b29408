-- Fewer index entries written per code exchange. Kept in step with
-- migrations/sqlite/0026_refresh_tokens_lean.sql (which also keys the SQLite table by the
-- token's hash, as a Postgres primary key already is).
--
-- The purge looks for used tokens (`used_at < cutoff`), and a token is unused for most of its
-- life: the index on `used_at` holds used tokens only, so issuing a token writes nothing there.
DROP INDEX refresh_tokens_used;
CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at) WHERE used_at IS NOT NULL;
