-- Web origins allowed to call the token, userinfo and revocation endpoints from a browser
-- (CORS, issue #19), as a JSON list; "+" stands for the origins of the redirect URIs. Kept in
-- step with migrations/sqlite/0007_client_web_origins.sql.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '["+"]';
