-- Mutual-TLS client authentication and certificate-bound tokens (RFC 8705), the certificate
-- passed by a TLS-terminating proxy. Kept in step with migrations/postgres/0025_mtls.sql.
--
-- The one certificate subject a tls_client_auth client is known by (RFC 8705 §2.1.2): the
-- metadata name (tls_client_auth_subject_dn, tls_client_auth_san_dns, _san_uri, _san_ip or
-- _san_email) and its value; null for other clients.
ALTER TABLE clients ADD COLUMN tls_subject_field TEXT;
ALTER TABLE clients ADD COLUMN tls_subject TEXT;
-- tls_client_certificate_bound_access_tokens (RFC 8705 §3.4): the client's access tokens carry
-- cnf.x5t#S256 of its certificate.
ALTER TABLE clients ADD COLUMN cert_bound BIGINT NOT NULL DEFAULT 0;
-- The certificate (its SHA-256 thumbprint, base64url) a public client's refresh tokens are
-- bound to (RFC 8705 §4).
ALTER TABLE grants ADD COLUMN cert_x5t TEXT;
