-- Second factors (issue #5): TOTP secrets, recovery codes, and each client's minimum acr.
-- Kept in step with migrations/postgres/0003_mfa.sql.

-- The assurance level a client always requires ("1" one factor, "2" two factors).
ALTER TABLE clients ADD COLUMN min_acr BIGINT NOT NULL DEFAULT 1;

-- One authenticator app per user. The secret is sealed with the KEK (associated data
-- "totp:<user id>"); last_step is the last accepted RFC 6238 time step, raised by
-- compare-and-set so that a code is accepted once.
CREATE TABLE totp_credentials (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    secret_enc  TEXT NOT NULL,
    last_step   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Single-use recovery codes, stored as SHA-256; used_at is set once, conditionally.
CREATE TABLE recovery_codes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE UNIQUE INDEX recovery_codes_user_hash ON recovery_codes (user_id, code_hash);
