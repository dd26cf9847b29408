-- The background purge: a lease so one node at a time runs it, and indexes on the columns it
-- selects by, so a purge stays cheap as tables grow.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO leases (name, holder, expires_at) VALUES ('purge', '', 0);
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
