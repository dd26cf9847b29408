//! Each rule of each sign-up field, refused on the server with its own message beside its
//! field (and nothing created, nothing mailed); the valid forms it normalizes.

use super::*;

/// Submits the valid form with `field` set to `value`: refused with `message` beside it.
async fn refused(env: &[(&str, &str)], field: &str, value: &str, message: &str) {
    let server = Server::start_with(env);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let mut v = valid("someone@example.com");
    v.retain(|(k, _)| *k != field);
    let mut f = fields(&v);
    f.push((field, value));
    let page = browser.submit(&form, &f).await;
    assert_eq!(page.status, 400, "{page:?}");
    let said =
        element_text(&page, &format!("{field}-error")).unwrap_or_else(|| panic!("no message for {field}: {page:?}"));
    assert!(said.contains(message), "{field}={value:?}: {said}");
    assert!(page.body.contains("aria-invalid=\"true\""), "{page:?}");
    // The form comes back filled in (but for the password), for another try.
    let again = form_with(&page, "/login/", "given_name").unwrap();
    if field != "password" && field != "given_name" {
        assert_eq!(again.value("given_name"), Some("Rahim"));
    }
    assert_eq!(again.value("password"), Some(""));
    assert!(server.db_strings("SELECT id FROM users").is_empty(), "nothing created");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.outbox().is_empty(), "nothing mailed");
}

#[tokio::test]
async fn a_required_name_must_be_given() {
    refused(ENV, "given_name", "  ", "Enter your given name.").await;
}

#[tokio::test]
async fn names_are_letters_spaces_hyphens_and_apostrophes() {
    refused(ENV, "family_name", "Uddin2", "only letters, spaces, hyphens and apostrophes").await;
}

#[tokio::test]
async fn names_are_at_most_100_characters() {
    refused(ENV, "given_name", &"Ä".repeat(101), "at most 100 characters").await;
}

#[tokio::test]
async fn a_birth_date_is_yyyy_mm_dd() {
    refused(ENV, "birthdate", "23/04/1990", "YYYY-MM-DD").await;
}

#[tokio::test]
async fn a_birth_date_is_a_real_date() {
    refused(ENV, "birthdate", "1990-02-30", "does not exist").await;
}

#[tokio::test]
async fn a_birth_date_is_in_the_past() {
    refused(ENV, "birthdate", "2999-01-01", "a date in the past").await;
}

#[tokio::test]
async fn an_under_age_birth_date_is_refused() {
    use chrono::Datelike;
    // Fifteen years and a few days old.
    let today = chrono::DateTime::from_timestamp(now(), 0).unwrap().date_naive() - chrono::Days::new(5);
    let fifteen = today.with_year(today.year() - 15).unwrap_or(today).format("%Y-%m-%d").to_string();
    refused(ENV, "birthdate", &fifteen, "at least 16 years old").await;
}

#[tokio::test]
async fn a_gender_is_one_of_the_operators_list() {
    refused(ENV, "gender", "robot", "Choose one of: female, male, other").await;
}

#[tokio::test]
async fn a_phone_number_must_be_valid() {
    refused(ENV, "phone_number", "0171", "not a valid phone number").await;
}

#[tokio::test]
async fn a_landline_is_refused_where_only_mobiles_are_taken() {
    let mut env = ENV.to_vec();
    env.push(("LATCHKEY_REGISTRATION_MOBILE_ONLY", "true"));
    // Dhaka's fixed-line number, in national format.
    refused(&env, "phone_number", "02-9565234", "mobile").await;
}

#[tokio::test]
async fn an_email_must_be_an_address() {
    refused(ENV, "email", "someone at example.com", "Enter an email address").await;
}

#[tokio::test]
async fn an_email_at_a_denied_domain_is_refused() {
    refused(ENV, "email", "someone@mailinator.com", "cannot be used here").await;
}

#[tokio::test]
async fn an_email_outside_the_allowed_domains_is_refused() {
    let mut env = ENV.to_vec();
    env.push(("LATCHKEY_REGISTRATION_EMAIL_DOMAINS_ALLOWED", "example.org"));
    refused(&env, "email", "someone@example.com", "open to addresses at example.org only").await;
}

#[tokio::test]
async fn a_username_has_no_spaces_or_at_sign() {
    refused(ENV, "username", "rahim@home", "3 to 64 letters, digits").await;
}

#[tokio::test]
async fn the_password_follows_the_policy() {
    refused(ENV, "password", "password1", "too easy to guess").await;
}

#[tokio::test]
async fn the_password_is_not_the_email() {
    refused(ENV, "password", "someone@example.com", "").await;
}

#[tokio::test]
async fn a_bangladeshi_national_number_is_stored_as_e164_with_every_field_valid() {
    let server = Server::start_with(ENV);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let mut v = valid("bd@example.com");
    v.push(("username", "rahim.uddin".into()));
    let page = browser.submit(&form, &fields(&v)).await;
    assert_eq!(page.status, 200, "{page:?}");
    let claims = server.cli(&["users", "show", "rahim.uddin", "--json"])["claims"].clone();
    assert_eq!(claims["phone_number"], "+8801712345678");
    assert_eq!(claims["given_name"], "Rahim");
    assert_eq!(claims["family_name"], "Uddin-Chowdhury");
    assert_eq!(claims["birthdate"], "1990-04-23");
    assert_eq!(claims["gender"], "male");
    assert_eq!(claims["email_verified"], false);
}
