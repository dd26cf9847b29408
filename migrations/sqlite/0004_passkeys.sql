-- Passkeys (WebAuthn, issue #5). Kept in step with migrations/postgres/0004_passkeys.sql.

-- The WebAuthn user handle of each account that has registered a passkey: random and stable,
-- never the username, so an authenticator's stored handle reveals nothing about the account.
CREATE TABLE webauthn_users (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    handle      TEXT NOT NULL UNIQUE
);

-- One row per registered credential. credential_id is base64url (unique: a credential belongs
-- to one account); passkey is the webauthn-rs credential as JSON (public key, counter, flags);
-- sign_count mirrors its counter for compare-and-set; backup_eligible (0/1) marks a synced
-- passkey (amr "swk") as against a device-bound one ("hwk").
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    credential_id   TEXT NOT NULL UNIQUE,
    passkey         TEXT NOT NULL,
    name            TEXT NOT NULL,
    sign_count      BIGINT NOT NULL,
    backup_eligible BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
