-- Emailed sign-in codes as a second factor (issue #5). Kept in step with
-- migrations/postgres/0006_email_otp.sql.

-- Users who turned emailed codes on, and the address they confirmed with a first code; codes
-- go there. The codes themselves are short-lived and live in the ephemeral store.
CREATE TABLE email_otp_enrolments (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
