-- Password history (issue #13): the last `password.history` argon2 hashes of each account,
-- the current one included, so a new password can be refused when it repeats one of them.
-- generation counts up per account; only the newest rows are kept. Kept in step with
-- migrations/postgres/0010_password_history.sql.
CREATE TABLE password_history (
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation    BIGINT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (user_id, generation)
);

-- Each account's current password is the first entry of its history.
INSERT INTO password_history (user_id, generation, password_hash, created_at)
SELECT id, 1, password_hash, updated_at FROM users WHERE password_hash IS NOT NULL;
