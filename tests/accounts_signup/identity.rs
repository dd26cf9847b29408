//! One account per username and per email whatever their case: sign-in, the CLI, sign-up, and
//! a database from before that had case-duplicates, which still migrates and says which.

use super::*;

#[tokio::test]
async fn sign_in_ignores_the_case_of_the_username_and_email() {
    let server = Server::start();
    server.add_user_with("demo", PASSWORD, &["email_verified=true"]);
    let c = server.first_party_client();
    for login in ["DEMO@example.com", "Demo", " demo@EXAMPLE.com "] {
        let browser = server.browser();
        let o = browser
            .authorize_and_complete(
                &auth_params(&c, "openid", "s", "n"),
                Some((login, PASSWORD)),
                Decision::NotExpected,
            )
            .await;
        let tokens = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json());
        assert_eq!(tokens.id_claims()["sub"], server.db_strings("SELECT id FROM users")[0], "{login}");
    }
}

#[tokio::test]
async fn the_cli_refuses_a_username_or_email_differing_only_in_case() {
    let server = Server::start();
    server.add_user("demo", PASSWORD);
    let (ok, _, err) = server.cli_raw(
        &["users", "add", "--username", "DEMO", "--email", "other@example.com", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = server.cli_raw(
        &["users", "add", "--username", "other", "--email", "Demo@Example.COM", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(!ok && err.contains("another user has the email"), "{err}");
    assert_eq!(server.db_strings("SELECT id FROM users").len(), 1);
}

#[tokio::test]
async fn sign_up_refuses_a_username_differing_only_in_case() {
    let server = Server::start_with(ENV);
    server.add_user("rahim", PASSWORD);
    let c = server.first_party_client();
    let (browser, form) = signup_form(&server, &c).await;
    let mut v = valid("new@example.com");
    v.push(("username", "RAHIM".into()));
    let page = browser.submit(&form, &fields(&v)).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert_eq!(element_text(&page, "username-error").as_deref(), Some("This username is taken. Choose another."));
}

#[tokio::test]
async fn old_case_duplicates_migrate_are_reported_and_sign_in_by_their_exact_spelling() {
    let server = Server::start();
    server.add_user_with("demo", PASSWORD, &["email_verified=true"]);
    let demo = server.db_strings("SELECT id FROM users")[0].clone();
    // Rows as an older Latchkey let them be: the same name and address but for case, no keys.
    let inserted = server.db_strings(
        "INSERT INTO users (id, username, email, password_hash, claims, disabled, created_at, updated_at)
         SELECT 'dup-1', 'DEMO', 'Demo@Example.com', password_hash, '{}', 0, created_at + 1, updated_at FROM users
         RETURNING id",
    );
    assert_eq!(inserted, ["dup-1"]);

    let report = server.cli(&["migrate", "--json"]);
    assert_eq!(report["migrated"], true, "{report}");
    let conflicts = report["conflicts"].as_array().unwrap_or_else(|| panic!("{report}"));
    let mut fields: Vec<_> =
        conflicts.iter().map(|c| (c["user"].as_str().unwrap(), c["field"].as_str().unwrap())).collect();
    fields.sort();
    assert_eq!(fields, [("dup-1", "email"), ("dup-1", "username")], "{report}");
    assert!(conflicts.iter().all(|c| c["same_as"] == demo.as_str()), "{report}");
    let (_, _, stderr) = server.cli_raw(&["migrate"], None);
    assert!(stderr.contains("user dup-1 has the same username as user"), "{stderr}");

    // Each signs in: the old account by any case, the duplicate by its exact spelling.
    let c = server.first_party_client();
    for (login, sub) in [("demo", demo.as_str()), ("dEmO", demo.as_str()), ("DEMO", "dup-1")] {
        let browser = server.browser();
        let o = browser
            .authorize_and_complete(
                &auth_params(&c, "openid", "s", "n"),
                Some((login, PASSWORD)),
                Decision::NotExpected,
            )
            .await;
        let tokens = Tokens::from_json(server.redeem(&c, &o.code(), None).await.json());
        assert_eq!(tokens.id_claims()["sub"], sub, "{login}");
    }
}
