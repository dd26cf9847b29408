-- client_secret_jwt (OIDC Core §9): the provider checks the MAC of the client's assertions, so
-- it needs the client's secret itself, not only its hash. Kept in step with
-- migrations/postgres/0022_client_secret_jwt.sql.
--
-- The secret of a client_secret_jwt client, AES-256-GCM-sealed under the key-encryption key
-- with "clients.secret" and the client's id as associated data (store/sealed.rs), re-sealed by
-- `keys rewrap`. Null for every other client, whose secret is kept only as secret_hash.
ALTER TABLE clients ADD COLUMN secret_sealed TEXT;
