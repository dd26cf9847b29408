-- Accounts people create and run themselves (issue #13). Kept in step with
-- migrations/sqlite/0009_accounts.sql.

-- Usernames and emails are one account whatever their case: lookups and uniqueness go through
-- these normalized keys (trimmed, lower-cased). The application fills them, for new rows and,
-- after this migration, for existing ones (`Store::fill_login_keys`): Unicode lower-casing is
-- its own (`domain::user::login_key`), not the dialect's LOWER. Rows that conflict with an
-- earlier account keep a NULL key (unique indexes allow many NULLs), so a database holding
-- case-duplicates still migrates: those accounts are reported and stay usable by their exact
-- spelling.
ALTER TABLE users ADD COLUMN username_key TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
-- (Not users_username_key: Postgres names the UNIQUE constraint of users.username so.)
CREATE UNIQUE INDEX users_login_username ON users (username_key);
CREATE UNIQUE INDEX users_login_email ON users (email_key);

-- 'active', or 'pending' until a self-created account confirms its email.
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
