-- Upstream federation (issue #6): identities at Google, Facebook or any OpenID provider, each
-- linked to one local user. Kept in step with migrations/postgres/0005_upstream_identities.sql.
-- (0004 is left to passkeys.)

-- provider is the [[upstream]] id; subject is the upstream's stable user id (OIDC `sub`,
-- Facebook's app-scoped id). email is what the upstream said when the link was made, kept for
-- the account page and the audit trail, never used to sign in.
CREATE TABLE upstream_identities (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    email       TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX upstream_identities_user ON upstream_identities (user_id);
