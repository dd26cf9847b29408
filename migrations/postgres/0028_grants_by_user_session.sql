-- One index for a user's grants and a session's, instead of one each. Kept in step with
-- migrations/sqlite/0028_grants_by_user_session.sql.
--
-- Each grant written added an entry to both, each at a place as random as the user's or the
-- session's id: a page of its own written to the log per index per grant. A session is one
-- user's, so the statements that look for a session's grants name the session's user too, and
-- one index on both serves them and those that look for a user's.
DROP INDEX grants_session;
DROP INDEX grants_user;
CREATE INDEX grants_user_session ON grants (user_id, session_id);
