-- What the account's sessions page shows about each browser session, and what the idle timeout
-- and "remember me" need: the browser and address it started from, when it was last used
-- (written at most once a minute), and whether its cookie outlives the browser.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN persistent BIGINT NOT NULL DEFAULT 1;
UPDATE sessions SET last_seen_at = created_at;
-- A user's own activity, newest first.
CREATE INDEX audit_events_user ON audit_events (user_id, at);
