-- Verified phone numbers and sign-in codes by SMS and WhatsApp (issue #14). Kept in step with
-- migrations/sqlite/0016_phone_numbers.sql.

-- One verified number per user, E.164 (a number waiting for its code lives in the ephemeral
-- store). sms_codes / whatsapp_codes: 1 when the user turned that channel's sign-in codes on
-- (confirmed by a first code sent by it). Not unique: that an account holds a number must not
-- be learnt from another account's page; a first-factor code goes only to a number exactly one
-- account holds. The number is sealed under the KEK like the rest of the account's personal
-- data (store::sealed, row = user_id); number_key is its keyed hash, for the first-factor lookup.
CREATE TABLE phone_numbers (
    user_id         TEXT PRIMARY KEY REFERENCES users (id),
    number          TEXT NOT NULL,
    number_key      TEXT NOT NULL,
    verified_at     BIGINT NOT NULL,
    sms_codes       BIGINT NOT NULL DEFAULT 0,
    whatsapp_codes  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX phone_numbers_number_key ON phone_numbers (number_key);
