//! The operator's command line: every command that prints accepts `--json`; errors are one
//! line on stderr with a non-zero exit; `config check` refuses what `serve` would refuse, one
//! line per problem.

mod common;

use common::*;
use serde_json::Value;

/// `latchkey ARGS` with only `env` for settings (a fresh, empty data directory).
fn latchkey(env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("latchkey-cli-{}", random_string()));
    let mut cmd = std::process::Command::new(bin());
    cmd.args(args)
        .current_dir(std::env::temp_dir())
        .env("LATCHKEY_DATA_DIR", &dir)
        .env("LATCHKEY_KEYS_DIR", dir.join("keys"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_") && !k.starts_with("LATCHKEY_TEST")) {
        cmd.env_remove(name);
    }
    cmd.env("LATCHKEY_DATA_DIR", &dir).env("LATCHKEY_KEYS_DIR", dir.join("keys"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn config_check_refuses_each_bad_setting_with_one_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("LATCHKEY_KEK", "short", "LATCHKEY_KEK: not base64url of 32 bytes"),
        ("LATCHKEY_KEK_PREVIOUS", "short", "LATCHKEY_KEK_PREVIOUS: not base64url of 32 bytes"),
        ("LATCHKEY_MAIL_SMTP_URL", "http://mail.example.com", "mail.smtp_url"),
        ("LATCHKEY_MAIL_FROM", "not an address", "mail.from"),
        ("LATCHKEY_ISSUER", "http://login.example.com", "issuer: must be https"),
        ("LATCHKEY_DATABASE_URL", "mysql://db/latchkey", "database.url"),
        ("LATCHKEY_EPHEMERAL_URL", "memcached://cache", "ephemeral.url"),
        ("LATCHKEY_TRUSTED_PROXIES", "the balancer", "rate_limit.trusted_proxies"),
        ("LATCHKEY_CODE_TTL", "3600", "tokens.code_ttl"),
        ("LATCHKEY_RATE_LIMIT_BURST", "many", "LATCHKEY_RATE_LIMIT_BURST: 'many' is not a number"),
        ("LATCHKEY_METRICS_ENABLED", "perhaps", "LATCHKEY_METRICS_ENABLED"),
        ("LATCHKEY_LOGIN_IDLE_TIMEOUT", "30", "login.idle_timeout"),
        ("LATCHKEY_LOGIN_REMEMBER_ME_DEFAULT", "maybe", "LATCHKEY_LOGIN_REMEMBER_ME_DEFAULT"),
        ("LATCHKEY_PHONE_SMS", "twilio", "phone.twilio: account_sid, auth_token and from are needed"),
        ("LATCHKEY_PHONE_WHATSAPP", "pigeon", "LATCHKEY_PHONE_WHATSAPP: 'pigeon' is not off, outbox"),
        ("LATCHKEY_PHONE_ALLOWED_REGIONS", "GB,Narnia", "phone.allowed_regions: 'Narnia'"),
    ];
    for (name, value, expected) in cases {
        let (ok, stdout, stderr) = latchkey(&[(name, value)], &["config", "check"]);
        assert!(!ok, "{name}={value} passed: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{name}={value}: one line per problem:\n{stderr}");
        assert!(stderr.contains(expected), "{name}={value}: expected {expected:?} in {stderr}");
        assert!(stdout.is_empty(), "{name}={value}: problems go to stderr, not stdout: {stdout}");
    }
    // Two problems, two lines; with --json, also a document on stdout.
    let (ok, stdout, stderr) =
        latchkey(&[("LATCHKEY_KEK", "short"), ("LATCHKEY_MAIL_SMTP_URL", "ftp://x")], &["config", "check", "--json"]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 2, "{v}");

    let (ok, stdout, stderr) = latchkey(&[], &["config", "check", "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["valid"], true);
}

#[test]
fn serve_refuses_what_config_check_refuses_in_one_line() {
    let (ok, _, stderr) = latchkey(&[("LATCHKEY_KEK", "short"), ("LATCHKEY_LISTEN", "127.0.0.1:0")], &["serve"]);
    assert!(!ok);
    assert!(stderr.contains("LATCHKEY_KEK: not base64url of 32 bytes"), "{stderr}");
    let (ok, _, stderr) =
        latchkey(&[("LATCHKEY_ISSUER", "http://login.example.com"), ("LATCHKEY_CODE_TTL", "0")], &["serve"]);
    assert!(!ok);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("latchkey: invalid settings: issuer") && last.contains("; tokens.code_ttl"), "{stderr}");
}

#[test]
fn password_speed_checks_on_every_configured_worker() {
    let args = ["config", "password-speed", "--seconds", "0", "--json"];
    let (ok, stdout, stderr) = latchkey(&[("LATCHKEY_LOGIN_PASSWORD_WORKERS", "3")], &args);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["algorithm"].as_str(), v["m_cost_kib"].as_u64(), v["t_cost"].as_u64()),
        (Some("argon2id"), Some(19456), Some(2)),
        "{v}"
    );
    // Two checks in the queue per worker, each done once before the time is seen to be up.
    assert_eq!((v["workers"].as_u64(), v["checks"].as_u64()), (Some(3), Some(6)), "{v}");
    let (per_second, each) = (v["checks_per_second"].as_f64().unwrap(), v["ms_each"].as_f64().unwrap());
    assert!(per_second > 0.0 && (each * per_second / 1000.0 - 3.0).abs() < 1e-9, "{v}");
}

#[tokio::test]
async fn every_command_that_prints_accepts_json() {
    let server = Server::start();
    server.cli(&["migrate", "--json"]);
    let c = server.confidential_client();
    server.cli(&["clients", "list", "--json"]);
    server.cli(&["clients", "show", &c.id, "--json"]);
    server.cli(&["clients", "update", &c.id, "--web-origin", "+", "--json"]);
    server.cli(&["clients", "remove", &c.id, "--json"]);
    server.add_user("bob", PASSWORD);
    assert_eq!(server.cli(&["users", "list", "--json"])[0]["username"], "bob");
    assert_eq!(server.cli(&["users", "disable", "bob", "--json"])["disabled"], true);
    assert_eq!(server.cli(&["users", "show", "bob", "--json"])["disabled"], true);
    assert_eq!(server.cli(&["users", "enable", "bob", "--json"])["disabled"], false);
    assert_eq!(server.cli(&["users", "show", "bob", "--json"])["disabled"], false);
    server.cli(&["users", "reset-factors", "bob", "--json"]);
    let changed = server
        .cli_raw(&["users", "set-password", "bob", "--password-stdin", "--json"], Some("another long passphrase 42"));
    assert!(changed.0, "{}", changed.2);
    assert_eq!(serde_json::from_str::<Value>(&changed.1).unwrap()["sessions_ended"], true, "{}", changed.1);
    server.cli(&["users", "remove", "bob", "--json"]);
    let keys = server.cli(&["keys", "list", "--json"]);
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(server.cli(&["keys", "export", &kid, "--public", "--json"])["key"]["kid"], kid.as_str());
    assert!(
        server.cli(&["keys", "export", &kid, "--public", "--format", "pem", "--json"])["key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    server.cli(&["keys", "rotate", "--json", "--force"]);
    server.cli(&["keys", "rewrap", "--json"]);

    // An error: one line on stderr, nothing on stdout, a non-zero exit.
    let (ok, stdout, stderr) = server.cli_raw(&["users", "show", "bob", "--json"], None);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim_end(), "latchkey: no user bob");
}

/// The subcommands `latchkey ARGS --help` lists under "Commands:".
fn subcommands(args: &[&str]) -> Vec<String> {
    let (ok, help, stderr) = latchkey(&[], &[args, &["--help"]].concat());
    assert!(ok, "{args:?}: {stderr}");
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command, found by walking `--help` rather than listed by hand, so a new command
/// without `--json` fails here; `serve` alone prints no result.
#[test]
fn the_help_of_every_command_offers_json() {
    let mut todo: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|c| vec![c]).collect();
    let mut leaves = 0;
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let subs = subcommands(&args);
        if !subs.is_empty() {
            todo.extend(subs.into_iter().map(|s| [path.clone(), vec![s]].concat()));
            continue;
        }
        leaves += 1;
        if args == ["serve"] {
            continue;
        }
        let (_, help, _) = latchkey(&[], &[args.as_slice(), &["--help"]].concat());
        assert!(help.contains("--json"), "latchkey {} has no --json:\n{help}", args.join(" "));
    }
    assert!(leaves > 20, "only {leaves} commands found");
}

#[tokio::test]
async fn a_removed_user_cannot_sign_in_and_their_grants_are_gone() {
    let server = Server::start();
    server.add_alice();
    let client = server.confidential_client();
    let tokens = server.code_flow(&server.browser(), &client, "openid offline_access").await;
    server.cli(&["users", "remove", USER, "--json"]);
    server.refresh(&client, tokens.refresh_token()).await.assert_oauth_error(400, "invalid_grant");
    assert!(server.cli(&["users", "list", "--json"]).as_array().unwrap().is_empty());
    // The name is free again.
    server.add_alice();
}

#[tokio::test]
async fn keys_list_is_sorted_by_algorithm_and_state_with_readable_times() {
    let server = Server::start();
    server.add_client("es", &["--redirect-uri", CALLBACK, "--id-token-alg", "ES256"]);
    server.cli(&["keys", "rotate", "--force", "--json"]);
    let keys = server.cli(&["keys", "list", "--json"]);
    let rank = |s: &str| ["active", "next", "retired", "revoked"].iter().position(|x| *x == s).unwrap();
    let order: Vec<(String, usize)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["alg"].as_str().unwrap().to_owned(), rank(k["state"].as_str().unwrap())))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "{keys}");
    assert!(order.iter().any(|(a, _)| a == "ES256") && order.iter().any(|(a, _)| a == "RS256"));

    let text = server.cli_text(&["keys", "list"], None);
    for line in text.lines().skip(1) {
        // kid, alg, state, then the creation time as `YYYY-MM-DD HH:MM:SSZ`.
        let created: String = line.split_whitespace().skip(3).take(2).collect::<Vec<_>>().join(" ");
        let shape: String = created.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
        assert_eq!(shape, "9999-99-99 99:99:99Z", "{text}");
    }
}
