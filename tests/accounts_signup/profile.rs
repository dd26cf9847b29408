//! The profile page: the claims the operator lets people edit, by the sign-up rules; a new
//! email confirmed at the new address before it replaces the old one, which is told.

use super::*;

/// Opens /account/profile, signing in as `login` on the way.
async fn profile(browser: &Browser, login: &str) -> Resp {
    let mut r = browser.get("/account/profile").await;
    for _ in 0..6 {
        if !r.is_redirect() {
            break;
        }
        r = browser.follow(&r).await;
        if let Some(form) = login_form(&r) {
            r = browser.submit(&form, &[("username", login), ("password", PASSWORD)]).await;
        }
    }
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Your profile"), "{r:?}");
    r
}

fn claims(server: &Server) -> serde_json::Value {
    // Through the CLI: the stored claims are sealed.
    server.cli(&["users", "show", "nadia", "--json"])["claims"].clone()
}

#[tokio::test]
async fn valid_claims_are_saved_and_an_invalid_one_refused() {
    let server = Server::start_with(ENV);
    server.add_user_with("nadia", PASSWORD, &["given_name=Nadia"]);
    let browser = server.browser();
    let page = profile(&browser, "nadia").await;
    let form = form_with(&page, "/account/profile", "given_name").unwrap_or_else(|| panic!("{page:?}"));
    assert_eq!(form.value("given_name"), Some("Nadia"));
    assert!(page.body.contains("autocomplete=\"tel\"") && page.body.contains("autocomplete=\"bday\""), "{page:?}");

    let r = browser.submit(&form, &[("given_name", "Nadia Noor"), ("phone_number", "01812345678")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(element_text(&r, "notice").is_some_and(|n| n.contains("saved")), "{r:?}");
    let c = claims(&server);
    assert_eq!(c["given_name"], "Nadia Noor", "{c}");
    assert_eq!(c["phone_number"], "+8801812345678", "{c}");

    let form = form_with(&r, "/account/profile", "given_name").unwrap();
    let r = browser.submit(&form, &[("birthdate", "2030-01-01"), ("family_name", "Rahman")]).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(element_text(&r, "birthdate-error").is_some_and(|m| m.contains("past")), "{r:?}");
    let after = claims(&server);
    assert_eq!(after, c, "nothing saved from a refused form");
}

#[tokio::test]
async fn a_new_email_is_confirmed_before_it_replaces_the_old_one_which_is_told() {
    let server = Server::start_with(ENV);
    server.add_user_with("nadia", PASSWORD, &["email_verified=true"]);
    let browser = server.browser();
    let page = profile(&browser, "nadia").await;
    let form = form_with(&page, "/account/profile", "email").unwrap();
    let r = browser.submit(&form, &[("email", "Nadia.New@example.com")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(element_text(&r, "notice").is_some_and(|n| n.contains("N•••@example.com")), "{r:?}");
    assert_eq!(server.cli(&["users", "show", "nadia", "--json"])["email"], "nadia@example.com", "not yet");

    let mail = wait_mail(&server, "Nadia.New@example.com", 1).await;
    assert!(mail[0].raw.contains("You asked to use this address"), "{:?}", mail[0]);
    let code = code_in(&mail[0]);
    let r = browser
        .submit(&form_with(&r, "/account/profile", "code").unwrap_or_else(|| panic!("{r:?}")), &[("code", &code)])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(element_text(&r, "notice").is_some_and(|n| n.contains("now Nadia.New@example.com")), "{r:?}");
    assert_eq!(server.cli(&["users", "show", "nadia", "--json"])["email"], "Nadia.New@example.com");
    assert_eq!(server.cli(&["users", "show", "NADIA.new@example.com", "--json"])["username"], "nadia");

    let told = wait_mail(&server, "nadia@example.com", 1).await;
    assert_eq!(told[0].header("Subject"), Some("The email of your Acme ID account changed"));
    assert!(told[0].raw.contains("If you did not"), "{:?}", told[0]);
    // The new address signs in; the old one no longer does.
    let c = server.first_party_client();
    let o = server
        .browser()
        .authorize_and_complete(
            &auth_params(&c, "openid", "s", "n"),
            Some(("nadia.new@example.com", PASSWORD)),
            Decision::NotExpected,
        )
        .await;
    assert!(!o.code().is_empty());
}
