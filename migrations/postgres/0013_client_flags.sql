-- Per-client flags (issue #20): a resource server may introspect tokens issued to other clients
-- (everyone else reads only its own as active); a client may be held to PKCE even when it is
-- confidential. Kept in step with migrations/sqlite/0013_client_flags.sql.
ALTER TABLE clients ADD COLUMN resource_server BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_pkce BIGINT NOT NULL DEFAULT 0;
