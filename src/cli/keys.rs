//! `latchkey keys …`: list, rotate, retire, revoke, import, export and rewrap signing keys.
//! Every change goes through `keys::lifecycle` and one transaction, and is audited; the running
//! nodes pick it up within `keys::REFRESH`. Private parts are never printed.

use super::{Json, now, open, print};
use crate::config::Settings;
use crate::keys::lifecycle::{self, Plan, Policy};
use crate::keys::{self, Alg, KeyState, kek, kek::Kek};
use crate::login::steps::totp;
use crate::store::{AuditEvent, KeyChange, SigningKeyRow, Store};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// The signing keys: kid, algorithm, state, created, activated, retires_at
    List {
        #[command(flatten)]
        json: Json,
    },
    /// next → active, active → retired, and a new next key, for every algorithm or one (creates
    /// what is missing first)
    Rotate {
        #[arg(long, value_parser = alg_names())]
        alg: Option<String>,
        /// Activate the next key even if clients may not have fetched it yet
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Retire a key: an active key through a rotation of its algorithm, a next key at once
    Retire {
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Emergency: unpublish a key at once; tokens it signed stop verifying
    Revoke {
        /// Key ids are base64url and may start with `-`
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[command(flatten)]
        json: Json,
    },
    /// Import a private key (PEM or JWK) as the next key of its algorithm
    Import {
        file: PathBuf,
        /// The algorithm (default: from the JWK's alg, else RS256 for RSA keys)
        #[arg(long, value_parser = alg_names())]
        alg: Option<String>,
        #[command(flatten)]
        json: Json,
    },
    /// Print a key's public part
    Export {
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Only public parts are ever exported; the flag says so explicitly
        #[arg(long, required = true)]
        public: bool,
        #[arg(long, default_value = "jwk", value_parser = ["jwk", "pem"])]
        format: String,
        /// Print {kid, alg, format, key} (the PEM as a string)
        #[command(flatten)]
        json: Json,
    },
    /// Re-seal every private key under a new key-encryption key (LATCHKEY_NEW_KEK, else a new
    /// one generated into keys_dir; with LATCHKEY_KEK set and no LATCHKEY_NEW_KEK, under
    /// LATCHKEY_KEK itself)
    Rewrap {
        #[command(flatten)]
        json: Json,
    },
}

fn alg_names() -> [&'static str; 4] {
    Alg::ALL.map(Alg::as_str)
}

pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let store = open(settings).await?;
    let policy = Policy::from_settings(settings);
    match command {
        KeysCommand::List { json } => {
            let mut keys = store.signing_keys().await?;
            keys.sort_by_key(|k| (k.alg.clone(), state_rank(&k.state), std::cmp::Reverse(k.created_at)));
            print(json.json, serde_json::to_value(&keys)?, || {
                let t = |v: Option<i64>| v.map_or("-".to_owned(), readable_time);
                let mut out = format!(
                    "{:<22}  {:<5}  {:<7}  {:<20}  {:<20}  {:<20}",
                    "kid", "alg", "state", "created", "activated", "retires_at"
                );
                for k in &keys {
                    out.push_str(&format!(
                        "\n{:<22}  {:<5}  {:<7}  {:<20}  {:<20}  {:<20}",
                        k.kid,
                        k.alg,
                        k.state,
                        readable_time(k.created_at),
                        t(k.activated_at),
                        t(k.retires_at)
                    ));
                }
                out
            });
        }
        KeysCommand::Rotate { alg, force, json } => {
            let algs = match alg {
                Some(a) => vec![Alg::parse(&a).expect("clap checked the value")],
                None => Alg::ALL.to_vec(),
            };
            let kek = Kek::load_or_create(&settings.keys_dir)?;
            let rows = store.signing_keys().await?;
            // Every algorithm in one transaction: all rotate, or (one next key too young) none.
            let mut plan = Plan::default();
            let mut retired = Vec::new();
            for alg in &algs {
                let p = lifecycle::rotate(&rows, *alg, now(), policy, force)?;
                retired.push(p.changes.iter().find(|c| c.to == "retired").map(|c| c.kid.clone()));
                plan.changes.extend(p.changes);
                plan.create.extend(p.create);
            }
            let after = run_plan(&store, &kek, &plan, "cli").await?;
            let kid = |alg: Alg, s: KeyState| {
                after.iter().find(|r| r.alg == alg.as_str() && r.state == s.as_str()).map(|r| r.kid.clone())
            };
            let report: Vec<Value> = algs
                .iter()
                .zip(&retired)
                .map(|(a, r)| {
                    json!({ "alg": a, "active": kid(*a, KeyState::Active), "next": kid(*a, KeyState::Next), "retired": r })
                })
                .collect();
            print(json.json, json!(report), || {
                report
                    .iter()
                    .map(|r| {
                        let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
                        match r["retired"].as_str() {
                            Some(old) => {
                                format!("{}: {} is active, {old} retired, {} is next", s("alg"), s("active"), s("next"))
                            }
                            None => format!(
                                "{}: created what was missing; {} is active, {} is next (it may sign after {} s)",
                                s("alg"),
                                s("active"),
                                s("next"),
                                policy.min_next_age + 1
                            ),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCommand::Retire { kid, force, json } => {
            let kek = Kek::load_or_create(&settings.keys_dir)?;
            let plan = lifecycle::retire(&store.signing_keys().await?, &kid, now(), policy, force)?;
            run_plan(&store, &kek, &plan, "cli").await?;
            print(json.json, json!({ "kid": kid, "state": "retired" }), || format!("retired {kid}"));
        }
        KeysCommand::Revoke { kid, json } => {
            let kek = Kek::load_or_create(&settings.keys_dir)?;
            let plan = lifecycle::revoke(&store.signing_keys().await?, &kid, now())?;
            run_plan(&store, &kek, &plan, "cli").await?;
            print(json.json, json!({ "kid": kid, "state": "revoked" }), || {
                format!("revoked {kid}; every node drops it within {} s", keys::REFRESH.as_secs())
            });
        }
        KeysCommand::Import { file, alg, json } => {
            let input = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let alg = match alg {
                Some(a) => Alg::parse(&a).expect("clap checked the value"),
                None => Alg::of_key(&input).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: not a key Latchkey can sign with (RSA, P-256 or Ed25519 private key, PEM or JWK)",
                        file.display()
                    )
                })?,
            };
            let (pem, jwk) = alg.import(&input).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let kek = Kek::load_or_create(&settings.keys_dir)?;
            let t = now();
            let row = keys::record(&kek, alg, &pem, jwk, KeyState::Next, t)?;
            // The imported key takes the place of the current next key, which never signed.
            let changes: Vec<KeyChange> = store
                .signing_keys()
                .await?
                .iter()
                .filter(|r| r.alg == alg.as_str() && r.state == KeyState::Next.as_str())
                .map(|r| KeyChange {
                    kid: r.kid.clone(),
                    from: r.state.clone(),
                    to: KeyState::Retired.as_str().into(),
                    activated_at: None,
                    retires_at: Some(t),
                })
                .collect();
            if !keys::commit(&store, &changes, std::slice::from_ref(&row), t, "cli import").await? {
                anyhow::bail!("the keys changed while importing; run the command again");
            }
            print(json.json, json!({ "kid": row.kid, "alg": alg, "state": "next" }), || {
                format!("imported {} as the next {alg} key; `keys rotate --alg {alg}` activates it", row.kid)
            });
        }
        KeysCommand::Export { kid, format, json, .. } => {
            let row = store
                .signing_keys()
                .await?
                .into_iter()
                .find(|r| r.kid == kid)
                .ok_or_else(|| anyhow::anyhow!("no key {kid}"))?;
            let key: Value = if format == "jwk" {
                serde_json::from_str(&row.public_jwk)?
            } else {
                let alg = Alg::parse(&row.alg).ok_or_else(|| anyhow::anyhow!("key {kid}: unknown algorithm"))?;
                let kek = Kek::load_or_create(&settings.keys_dir)?;
                Value::String(String::from_utf8(alg.public_pem(&kek.open(&row.kid, &row.private_enc)?)?)?)
            };
            if json.json {
                print(true, json!({ "kid": row.kid, "alg": row.alg, "format": format, "key": key }), String::new);
            } else {
                match key {
                    Value::String(pem) => print!("{pem}"),
                    jwk => println!("{}", serde_json::to_string_pretty(&jwk)?),
                }
            }
        }
        KeysCommand::Rewrap { json } => rewrap(settings, &store, json).await?,
    }
    Ok(())
}

/// Keys of one algorithm in the order of their life: the one signing first.
fn state_rank(state: &str) -> u8 {
    match KeyState::parse(state) {
        Some(KeyState::Active) => 0,
        Some(KeyState::Next) => 1,
        Some(KeyState::Retired) => 2,
        Some(KeyState::Revoked) | None => 3,
    }
}

/// A Unix time as `2026-12-05 18:20:00Z` (UTC).
fn readable_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// Applies a plan and returns the keys as they are afterwards.
async fn run_plan(store: &Store, kek: &Kek, plan: &Plan, by: &str) -> anyhow::Result<Vec<SigningKeyRow>> {
    if !keys::apply(store, kek, plan, now(), by).await? {
        anyhow::bail!("the keys changed while this command ran (another node or command); run it again");
    }
    Ok(store.signing_keys().await?)
}

/// `keys rewrap`: every private key, authenticator (TOTP) secret and sealed personal datum
/// (`store::sealed`, lookup hashes included) re-sealed under the new KEK. In file
/// mode the new KEK is written to `kek.next` first and becomes `kek` only after the commit (the
/// old one stays as `kek.previous`, which running nodes still open with); so a crash at any
/// point leaves every record readable.
async fn rewrap(settings: &Settings, store: &Store, json: Json) -> anyhow::Result<()> {
    let old = Kek::load_or_create(&settings.keys_dir)?;
    let file_mode = old.keys_dir().map(PathBuf::from);
    let new_env = std::env::var("LATCHKEY_NEW_KEK").ok().map(|k| k.trim().to_owned());
    let new_text = new_env.clone().or_else(|| file_mode.as_ref().map(|_| kek::generate()));
    let target = match &new_text {
        Some(t) => old.successor(t)?,
        // LATCHKEY_KEK is the new key already (LATCHKEY_KEK_PREVIOUS holds the old one).
        None => old.clone(),
    };
    if let (Some(dir), Some(text)) = (&file_mode, &new_text) {
        kek::stage_file(dir, text)?;
    }
    // A record created meanwhile by a node sealing with the old KEK is caught by another pass.
    let (mut total, mut secrets_total, mut personal_total) = (0, 0, 0);
    for _ in 0..5 {
        let mut sealed = Vec::new();
        for r in store.signing_keys().await?.iter().filter(|r| !target.is_current(&r.kid, &r.private_enc)) {
            let plain = target.open(&r.kid, &r.private_enc)?;
            sealed.push((r.kid.clone(), r.private_enc.clone(), target.seal(&r.kid, &plain)));
        }
        let mut secrets = Vec::new();
        for (user_id, enc) in store.totp_secrets().await? {
            let aad = totp::aad(&user_id);
            if !target.is_current(&aad, &enc) {
                let plain = target.open(&aad, &enc)?;
                secrets.push((user_id, enc, target.seal(&aad, &plain)));
            }
        }
        // Personal data (store::sealed): its rows and lookup hashes, in one transaction.
        let personal = store.reseal_personal_data(&target).await?;
        personal_total += personal;
        if sealed.is_empty() && secrets.is_empty() && personal == 0 {
            break;
        }
        total += store.reseal_signing_keys(&sealed).await?;
        secrets_total += store.reseal_totp_secrets(&secrets).await?;
    }
    if let Some(dir) = &file_mode {
        kek::promote_file(dir)?;
    }
    store
        .audit(
            AuditEvent::new("key.kek_rewrapped")
                .detail("keys", total)
                .detail("totp_secrets", secrets_total)
                .detail("personal_data_rows", personal_total),
            now(),
        )
        .await;
    if json.json {
        let value = json!({ "keys": total, "totp_secrets": secrets_total, "personal_data_rows": personal_total });
        print(true, value, String::new);
        return Ok(());
    }
    match (&file_mode, new_env) {
        (Some(dir), _) => println!(
            "re-sealed {total} keys, {secrets_total} authenticator secrets and the personal data of {personal_total} rows; {} now holds the new key-encryption key, the old one stays in kek.previous (running nodes switch on their own; delete it once all have)",
            dir.join("kek").display()
        ),
        (None, Some(_)) => println!(
            "re-sealed {total} keys, {secrets_total} authenticator secrets and the personal data of {personal_total} rows under LATCHKEY_NEW_KEK; restart every node with LATCHKEY_KEK set to it and LATCHKEY_KEK_PREVIOUS to the old one"
        ),
        (None, None) => println!(
            "re-sealed {total} keys, {secrets_total} authenticator secrets and the personal data of {personal_total} rows under LATCHKEY_KEK; LATCHKEY_KEK_PREVIOUS may now be removed"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn key_ids_may_start_with_a_hyphen() {
        // Key ids are base64url: one in 64 starts with `-`.
        for command in ["revoke", "retire", "export"] {
            let mut args = vec!["latchkey", "keys", command, "-fRtG6L1cdjb9soGzzLj2w"];
            if command == "export" {
                args.push("--public");
            }
            assert!(super::super::Cli::try_parse_from(&args).is_ok(), "{args:?}");
        }
    }
}
