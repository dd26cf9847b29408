-- The purge finds what it deletes through indexes. Kept in step with
-- migrations/sqlite/0027_purge_by_index.sql.
--
-- It deletes grants that have expired or were revoked, and sessions that have expired or were
-- ended: each an OR of two conditions, and only one side of each had an index, so every batch
-- read the whole table (on SQLite while holding the write lock, stalling every sign-in and
-- token meanwhile, for longer as the tables grow). Revoked grants and ended sessions are few
-- next to live ones: these indexes hold those rows only, so issuing a grant or starting a
-- session writes nothing here. The purge asks `revoked_at > 0` and `ended_at > 0`, which
-- these indexes answer. Initial access tokens get one on their expiry as well, so that no
-- statement of the purge reads a whole table.
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX initial_access_tokens_expires ON initial_access_tokens (expires_at);
