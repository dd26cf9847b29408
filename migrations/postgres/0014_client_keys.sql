-- A client's own public keys, inline (a JWK Set as JSON) or by URL, and the algorithms it signs
-- request objects and private_key_jwt assertions with (OIDC Dynamic Client Registration 1.0 §2).
-- A null algorithm means any the provider supports; request_object_signing_alg 'none' is the
-- explicit opt-in to unsigned request objects. Kept in step with
-- migrations/sqlite/0014_client_keys.sql.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT;
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;
