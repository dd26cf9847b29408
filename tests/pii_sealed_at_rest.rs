//! Personal data sealed at rest (issue #20, medium 7): after a sign-up, a federated sign-in,
//! emailed codes and sign-ins from a client address, the database (the SQLite file and its
//! write-ahead log, or every Postgres row as text) holds none of the emails, names, phone
//! numbers, addresses, client addresses or upstream subjects in clear; sign-in by email still
//! ignores case; `keys rewrap` re-seals all of it and everything works after; and a database
//! with rows written in clear by an older Latchkey is sealed by `migrate`, batch by batch,
//! continuing where a stopped run left off.

mod common;

use common::upstream::{Person, Upstream, config_env};
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const ID: &str = "acme";
/// The client address every browser here comes from, through the trusted proxy.
const IP: &str = "198.51.100.7";
const ALICE_EMAIL: &str = "alice@example.com";
const UPSTREAM_SUBJECT: &str = "upstream-subject-7f3a9c";
const UPSTREAM_EMAIL: &str = "federica@upstream.example";
const SIGNUP_EMAIL: &str = "rahim.signup@example.org";
const NEW_PASSWORD: &str = "violet harbour tangent 92";
const SIGN_IN_CODE: &str = "Your sign-in code";

/// What must never be found in clear: alice's profile (the CLI's `FULL_CLAIMS`), the signed-up
/// account's, the federated person's, and the client address.
const PERSONAL: &[&str] = &[
    ALICE_EMAIL,
    "Alice Liddell",
    "Liddell",
    "+442079460958",
    "1 Wonderland Way",
    "1952-05-04",
    SIGNUP_EMAIL,
    "Uddin-Chowdhury",
    "+8801712345678",
    "1990-04-23",
    UPSTREAM_SUBJECT,
    UPSTREAM_EMAIL,
    "Federica Upstreamson",
    IP,
];

struct Deployment {
    up: Upstream,
    server: Server,
    client: TestClient,
    config: PathBuf,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A server with an upstream OpenID provider (registration allowed), sign-up on, behind a
/// trusted proxy; alice added by the operator.
async fn deployment() -> Deployment {
    let up = Upstream::oidc().await;
    let mut person = Person::new(UPSTREAM_SUBJECT, UPSTREAM_EMAIL);
    person.name = "Federica Upstreamson".into();
    up.sign_in_as(person);
    let (config, env) = config_env(&up.config(ID, "oidc", true));
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_REGISTRATION_ENABLED", "true"),
        (
            "LATCHKEY_REGISTRATION_FIELDS",
            "given_name=required,family_name=optional,birthdate=optional,phone_number=optional",
        ),
        ("LATCHKEY_REGISTRATION_PHONE_REGION", "BD"),
    ]);
    let server = Server::start_with(&env);
    server.add_alice();
    let client = server.first_party_client();
    Deployment { up, server, client, config }
}

impl Deployment {
    fn browser(&self) -> Browser {
        self.server.browser_behind_proxy(IP)
    }

    fn params(&self) -> Vec<(&str, &str)> {
        auth_params(&self.client, "openid email profile phone address", "st", "n")
    }

    /// Redeems the code of `o`; answers the ID token's `sub` and what userinfo says.
    async fn sub_and_userinfo(&self, o: &Outcome) -> (String, serde_json::Value) {
        let r = self.server.redeem(&self.client, &o.code(), None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let tokens = Tokens::from_json(r.json());
        let sub = tokens.id_claims()["sub"].as_str().unwrap().to_owned();
        (sub, check_userinfo(&self.server.userinfo(&tokens.access_token).await))
    }

    /// A sign-in with `login` and `password`, and the emailed code sent to `codes_to` when the
    /// account asks for one.
    async fn sign_in(&self, login: &str, password: &str, codes_to: Option<&str>) -> Outcome {
        let browser = self.browser();
        let page = browser.follow(&browser.authorize(&self.params()).await).await;
        let sent = codes_to.map(|to| self.mails(to, SIGN_IN_CODE));
        let r = browser.login(&page, login, password).await;
        self.finish(&browser, r, codes_to.zip(sent)).await
    }

    /// A sign-in at the upstream, and the emailed code sent to `codes_to` when asked.
    async fn federate(&self, codes_to: Option<&str>) -> Outcome {
        let browser = self.browser();
        let start = browser.authorize(&self.params()).await;
        let sent = codes_to.map(|to| self.mails(to, SIGN_IN_CODE));
        let back = browser.federate(&start, ID).await;
        self.finish(&browser, back, codes_to.zip(sent)).await
    }

    /// Completes a sign-in; with `(address, mails before)`, through the emailed-code page.
    async fn finish(&self, browser: &Browser, r: Resp, code: Option<(&str, usize)>) -> Outcome {
        let Some((to, before)) = code else { return browser.complete(r, None, Decision::NotExpected).await };
        let page = browser.follow(&r).await;
        let form = code_form(&page).unwrap_or_else(|| panic!("the emailed-code page: {page:?}"));
        let code = self.next_code(to, SIGN_IN_CODE, before).await;
        let r = browser.submit(&form, &[("code", &code)]).await;
        browser.complete(r, None, Decision::NotExpected).await
    }

    /// How many mails to `to` with a subject beginning with `subject` there are.
    fn mails(&self, to: &str, subject: &str) -> usize {
        self.server.mail_to(to).iter().filter(|m| m.header("Subject").is_some_and(|s| s.starts_with(subject))).count()
    }

    /// The code of the first such mail after the `before` there were, waiting briefly (mail
    /// goes out off the request path).
    async fn next_code(&self, to: &str, subject: &str, before: usize) -> String {
        for _ in 0..100 {
            let mail: Vec<_> = self
                .server
                .mail_to(to)
                .into_iter()
                .filter(|m| m.header("Subject").is_some_and(|s| s.starts_with(subject)))
                .collect();
            if let Some(m) = mail.get(before) {
                if subject == SIGN_IN_CODE {
                    return m.code();
                }
                let text = m.raw.replace("=\r\n", "");
                let after = text.split("type this code on the page that asked for it: ").nth(1);
                let code: String =
                    after.unwrap_or_else(|| panic!("{m:?}")).chars().take_while(char::is_ascii_digit).collect();
                assert_eq!(code.len(), 6, "{m:?}");
                return code;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("no mail {subject:?} to {to} after the {before} there were");
    }

    /// Everything that puts personal data into the database: a sign-up confirmed by its code,
    /// a federated registration, sign-ins by email in another case, emailed codes turned on.
    /// Answers alice's and the federated account's ids.
    async fn fill(&self) -> (String, String) {
        // Sign-up from the sign-in page, confirmed by the emailed code.
        let browser = self.browser();
        let login = browser.follow(&browser.authorize(&self.params()).await).await;
        let page = browser.switch_to(&login, "signup").await;
        let form = form_with(&page, "/login/", "given_name").unwrap_or_else(|| panic!("sign-up form: {page:?}"));
        let fields = [
            ("given_name", "Rahim"),
            ("family_name", "Uddin-Chowdhury"),
            ("birthdate", "1990-04-23"),
            ("phone_number", "01712345678"),
            ("email", SIGNUP_EMAIL),
            ("password", NEW_PASSWORD),
        ];
        let sent = browser.submit(&form, &fields).await;
        assert_eq!(sent.status, 200, "{sent:?}");
        let code = self.next_code(SIGNUP_EMAIL, "Confirm", 0).await;
        let code_page = code_form(&sent).unwrap_or_else(|| panic!("{sent:?}"));
        let r = browser.submit(&code_page, &[("code", &code)]).await;
        let (_, info) = self.sub_and_userinfo(&browser.complete(r, None, Decision::NotExpected).await).await;
        assert_eq!(info["family_name"], "Uddin-Chowdhury", "{info}");
        assert_eq!(info["phone_number"], "+8801712345678", "{info}");

        // A federated registration; the next federated sign-in finds the same account.
        let (federated, info) = self.sub_and_userinfo(&self.federate(None).await).await;
        assert_eq!(info["email"], UPSTREAM_EMAIL, "{info}");
        assert_eq!(info["name"], "Federica Upstreamson", "{info}");
        assert_eq!(self.sub_and_userinfo(&self.federate(None).await).await.0, federated);

        // Alice by her email in other cases.
        let (alice, info) = self.sub_and_userinfo(&self.sign_in("ALICE@Example.COM", PASSWORD, None).await).await;
        assert_eq!(info["email"], ALICE_EMAIL, "{info}");
        assert_eq!(info["name"], "Alice Liddell", "{info}");
        assert_eq!(self.sub_and_userinfo(&self.sign_in(" alice@EXAMPLE.com ", PASSWORD, None).await).await.0, alice);

        // Emailed codes on, then a sign-in that asks for one.
        let owner = self.browser();
        let page = owner.security_page((ALICE_EMAIL, PASSWORD)).await;
        let before = self.mails(ALICE_EMAIL, SIGN_IN_CODE);
        let sent = owner.submit(&account_form(&page, "email-begin"), &[]).await;
        assert_eq!(sent.status, 200, "{sent:?}");
        let code = self.next_code(ALICE_EMAIL, SIGN_IN_CODE, before).await;
        let on = owner.submit(&account_form(&sent, "email-confirm"), &[("code", &code)]).await;
        assert_eq!(on.status, 200, "{on:?}");
        let o = self.sign_in("Alice@example.com", PASSWORD, Some(ALICE_EMAIL)).await;
        assert_eq!(self.sub_and_userinfo(&o).await.0, alice);
        (alice, federated)
    }
}

/// The database as a thief with a copy of it reads it: the SQLite file and its write-ahead log
/// as bytes, or every row of every Postgres table as text.
fn raw_database(server: &Server) -> String {
    if server.backends().uses_postgres() {
        let tables = server.db_strings(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        );
        assert!(tables.iter().any(|t| t == "users"), "{tables:?}");
        let rows: Vec<String> =
            tables.iter().flat_map(|t| server.db_strings(&format!("SELECT CAST(t AS TEXT) FROM \"{t}\" t"))).collect();
        rows.join("\n")
    } else {
        let mut bytes = Vec::new();
        for file in ["latchkey.db", "latchkey.db-wal"] {
            if let Ok(b) = std::fs::read(server.data_dir.join(file)) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Which of `values` the raw database holds in clear, in their own case or lower case.
fn in_clear(server: &Server, values: &[&str]) -> Vec<String> {
    let raw = raw_database(server);
    let lower = raw.to_lowercase();
    values.iter().filter(|v| lower.contains(&v.to_lowercase()) || raw.contains(**v)).map(|v| v.to_string()).collect()
}

#[tokio::test]
async fn no_email_name_phone_address_client_address_or_upstream_subject_is_stored_in_clear() {
    let d = deployment().await;
    let (alice, _) = d.fill().await;

    let found = in_clear(&d.server, PERSONAL);
    assert!(found.is_empty(), "in clear in the database: {found:?}");
    // Yet the product reads them: the account's sessions and activity show the address, the
    // CLI the profile.
    let events = d.server.cli(&["audit", "--kind", "login.succeeded", "--json"]);
    assert!(events.as_array().unwrap().iter().all(|e| e["ip"] == IP), "{events}");
    let shown = d.server.cli(&["users", "show", "ALICE@example.com", "--json"]);
    assert_eq!((shown["id"].as_str(), shown["claims"]["name"].as_str()), (Some(alice.as_str()), Some("Alice Liddell")));
    // Lookups are keyed hashes, not the lower-cased address.
    let keys = d.server.db_strings("SELECT email_key FROM users WHERE email_key IS NOT NULL");
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains('@')), "{keys:?}");
}

#[tokio::test]
async fn rewrap_reseals_personal_data_and_everything_works_after() {
    let d = deployment().await;
    let (alice, federated) = d.fill().await;
    let sealed = |s: &Server| {
        [
            "SELECT email || claims || email_key || username_key FROM users ORDER BY id",
            "SELECT subject || email || subject_key FROM upstream_identities",
            "SELECT email FROM email_otp_enrolments",
            "SELECT ip FROM sessions WHERE ip IS NOT NULL ORDER BY id",
            "SELECT ip FROM audit_events WHERE ip IS NOT NULL ORDER BY id",
        ]
        .map(|q| s.db_strings(q))
    };
    let before = sealed(&d.server);
    assert!(before.iter().all(|rows| !rows.is_empty()), "{before:?}");

    let out = d.server.cli(&["keys", "rewrap", "--json"]);
    let resealed = out["personal_data_rows"].as_u64().unwrap_or_else(|| panic!("{out}"));
    let after = sealed(&d.server);
    let rows: usize = before.iter().map(Vec::len).sum();
    assert!(resealed as usize >= rows, "{out}: {rows} rows");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.len(), a.len());
        assert!(b.iter().zip(a).all(|(b, a)| b != a), "every value re-sealed:\n{b:?}\n{a:?}");
    }
    // Only the new KEK from now on.
    std::fs::remove_file(d.server.data_dir.join("keys/kek.previous")).unwrap();
    assert!(in_clear(&d.server, PERSONAL).is_empty());

    // The running node follows: sign-in by email in another case, with the code mailed to the
    // sealed address; the federated account found by its subject; userinfo opens the claims.
    let o = d.sign_in("aLiCe@example.com", PASSWORD, Some(ALICE_EMAIL)).await;
    let (sub, info) = d.sub_and_userinfo(&o).await;
    assert_eq!(sub, alice);
    assert_eq!((info["email"].as_str(), info["phone_number"].as_str()), (Some(ALICE_EMAIL), Some("+442079460958")));
    assert_eq!(d.sub_and_userinfo(&d.federate(None).await).await.0, federated);
    let o = d.sign_in(SIGNUP_EMAIL, NEW_PASSWORD, None).await;
    assert_eq!(d.sub_and_userinfo(&o).await.1["family_name"], "Uddin-Chowdhury");
    // And a node started afresh, and the CLI.
    let peer = d.server.start_peer();
    let browser = peer.browser();
    let page = browser.follow(&browser.authorize(&d.params()).await).await;
    let r = browser.login(&page, "ALICE@EXAMPLE.COM", PASSWORD).await;
    let page = browser.follow(&r).await;
    assert!(code_form(&page).is_some(), "the peer knows alice and her emailed codes: {page:?}");
    let events = d.server.cli(&["audit", "--kind", "login.succeeded", "--json"]);
    assert!(events.as_array().unwrap().iter().all(|e| e["ip"] == IP), "{events}");
    assert!(!d.server.output().contains("ERROR"), "{}", d.server.output());
}

#[tokio::test]
async fn rows_written_in_clear_are_sealed_by_migrate_and_a_stopped_run_continues() {
    let d = deployment().await;
    let s = &d.server;
    // Rows as a Latchkey from before sealing wrote them (no `sealed` flag: in clear), with the
    // lower-cased lookup keys it kept: an account with a profile, its upstream link, its
    // emailed-code address, a session and audit events with its address.
    let old_ip = "203.0.113.9";
    let (now, later) = (s.now(), s.now() + 86_400);
    let inserted = s.db_strings(
        "INSERT INTO users (id, username, email, password_hash, claims, disabled, created_at, updated_at,
                            username_key, email_key)
         SELECT 'old-1', 'oldham', 'Old.Person@Example.net', password_hash,
                '{\"name\":\"Oldham Plainsworth\",\"phone_number\":\"+15550001111\"}', 0, created_at + 1, updated_at,
                'oldham', 'old.person@example.net'
         FROM users WHERE username = 'alice' RETURNING id",
    );
    assert_eq!(inserted, ["old-1"]);
    s.db_strings(&format!(
        "INSERT INTO upstream_identities (provider, subject, user_id, email, created_at)
         VALUES ('{ID}', 'old-upstream-subject-9', 'old-1', 'old.fed@upstream.example', 1) RETURNING provider"
    ));
    s.db_strings(
        "INSERT INTO email_otp_enrolments (user_id, email, created_at)
         VALUES ('old-1', 'old.codes@example.net', 1) RETURNING user_id",
    );
    s.db_strings(&format!(
        "INSERT INTO sessions (id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at, last_seen_at,
                               user_agent, ip, persistent)
         VALUES ('old-session', 'old-hash', 'old-1', {now}, '[\"pwd\"]', '1', {now}, {later}, {now}, 'Old Browser', '{old_ip}', 1)
         RETURNING id"
    ));
    for i in 0..3 {
        s.db_strings(&format!(
            "INSERT INTO audit_events (id, at, kind, user_id, client_id, ip, detail)
             VALUES ('old-event-{i}', {at}, 'login.succeeded', 'old-1', NULL, '{old_ip}', '{{}}') RETURNING id",
            at = now - i
        ));
    }
    let old: &[&str] = &[
        "Old.Person@Example.net",
        "Oldham Plainsworth",
        "+15550001111",
        "old-upstream-subject-9",
        "old.fed@upstream.example",
        "old.codes@example.net",
        old_ip,
    ];
    assert_eq!(in_clear(s, old).len(), old.len(), "the old rows are in clear to begin with");

    // A run stopped after two batches of one row: the account and its link sealed, the rest
    // still in clear, and the account already works (its code address read in clear).
    let first = s.cli(&["migrate", "--batch-size", "1", "--batches", "2", "--json"]);
    assert_eq!((first["sealed"].as_u64(), first["plain_left"].as_bool()), (Some(2), Some(true)), "{first}");
    assert_eq!(in_clear(s, old), ["old.codes@example.net", old_ip], "only what the stopped run had not reached");
    let o = d.sign_in("OLD.person@example.NET", PASSWORD, Some("old.codes@example.net")).await;
    let (sub, info) = d.sub_and_userinfo(&o).await;
    assert_eq!((sub.as_str(), info["name"].as_str()), ("old-1", Some("Oldham Plainsworth")));

    // The next run continues with the rows still in clear, and then there are none.
    let second = s.cli(&["migrate", "--batch-size", "2", "--json"]);
    assert_eq!((second["sealed"].as_u64(), second["plain_left"].as_bool()), (Some(5), Some(false)), "{second}");
    assert_eq!(in_clear(s, old), Vec::<String>::new());
    assert!(in_clear(s, PERSONAL).is_empty());
    let again = s.cli(&["migrate", "--json"]);
    assert_eq!(again["sealed"], 0, "{again}");

    // Everything reads after: sign-in by email with the code to the sealed address, the upstream
    // link found by its subject, the old audit events with their address.
    let o = d.sign_in("old.person@EXAMPLE.net", PASSWORD, Some("old.codes@example.net")).await;
    assert_eq!(d.sub_and_userinfo(&o).await.1["phone_number"], "+15550001111");
    d.up.sign_in_as(Person::new("old-upstream-subject-9", "old.fed@upstream.example"));
    let o = d.federate(Some("old.codes@example.net")).await;
    assert_eq!(d.sub_and_userinfo(&o).await.0, "old-1");
    let events = s.cli(&["audit", "--user", "oldham", "--json"]);
    let ips: Vec<_> = events.as_array().unwrap().iter().filter_map(|e| e["ip"].as_str()).collect();
    assert!(ips.contains(&old_ip) && ips.contains(&IP), "{events}");
}
