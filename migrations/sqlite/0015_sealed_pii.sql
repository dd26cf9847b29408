-- Personal data sealed at rest (store/sealed.rs). `sealed` says how a row's personal columns
-- are stored: 0 in clear (written before this migration, or by an older node), 1 sealed under
-- the key-encryption key. Rows still at 0 are sealed in batches after the migrations run.
ALTER TABLE users ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE upstream_identities ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE email_otp_enrolments ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN sealed BIGINT NOT NULL DEFAULT 0;

-- Only the rows still to seal, so finding them stays cheap in a long audit log.
CREATE INDEX users_plain ON users (id) WHERE sealed = 0;
CREATE INDEX upstream_identities_plain ON upstream_identities (provider) WHERE sealed = 0;
CREATE INDEX email_otp_enrolments_plain ON email_otp_enrolments (user_id) WHERE sealed = 0;
CREATE INDEX sessions_plain ON sessions (id) WHERE sealed = 0;
CREATE INDEX audit_events_plain ON audit_events (id) WHERE sealed = 0;

-- An upstream subject is found by its keyed hash; the (provider, subject) key now holds the
-- sealed subject, unique by construction, so the hash carries the uniqueness.
ALTER TABLE upstream_identities ADD COLUMN subject_key TEXT;
CREATE UNIQUE INDEX upstream_identities_subject_key ON upstream_identities (provider, subject_key);

-- The email is sealed: an index over it finds nothing (lookups go through email_key).
DROP INDEX users_email;
