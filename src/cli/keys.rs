//! `latchkey keys …`: list, rotate, retire, revoke, import, export and rewrap signing keys.
//! All but `rewrap` are the shared operations of `admin::keys` (through `keys::lifecycle`, one
//! transaction, audited); the running nodes pick a change up within `keys::REFRESH`. Private
//! parts are never printed.

use super::{Json, now, print};
use crate::admin::Ops;
use crate::config::Settings;
use crate::keys::lifecycle::Policy;
use crate::keys::{Alg, kek, kek::Kek};
use crate::login::steps::totp;
use crate::store::{AuditEvent, Store};
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

pub async fn run(ops: &Ops<'_>, command: KeysCommand) -> anyhow::Result<()> {
    use crate::admin::keys;
    match command {
        KeysCommand::List { json } => {
            let keys = keys::list(ops).await?;
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
            let report = keys::rotate(ops, keys::Rotate { alg, force }).await?;
            let min_age = Policy::from_settings(ops.settings).min_next_age + 1;
            print(json.json, serde_json::to_value(&report)?, || {
                report
                    .iter()
                    .map(|r| {
                        let s = |k: &Option<String>| k.clone().unwrap_or_else(|| "-".into());
                        match &r.retired {
                            Some(old) => {
                                format!("{}: {} is active, {old} retired, {} is next", r.alg, s(&r.active), s(&r.next))
                            }
                            None => format!(
                                "{}: created what was missing; {} is active, {} is next (it may sign after {min_age} s)",
                                r.alg,
                                s(&r.active),
                                s(&r.next),
                            ),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCommand::Retire { kid, force, json } => {
            let status = keys::retire(ops, &kid, force).await?;
            print(json.json, serde_json::to_value(&status)?, || format!("retired {kid}"));
        }
        KeysCommand::Revoke { kid, json } => {
            let status = keys::revoke(ops, &kid).await?;
            print(json.json, serde_json::to_value(&status)?, || {
                format!("revoked {kid}; every node drops it within {} s", crate::keys::REFRESH.as_secs())
            });
        }
        KeysCommand::Import { file, alg, json } => {
            let input = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let status = keys::import(ops, &input, alg.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let alg = status.alg.clone().unwrap_or_default();
            print(json.json, serde_json::to_value(&status)?, || {
                format!("imported {} as the next {alg} key; `keys rotate --alg {alg}` activates it", status.kid)
            });
        }
        KeysCommand::Export { kid, format, json, .. } => {
            let exported = keys::export(ops, &kid, &format).await?;
            if json.json {
                print(true, serde_json::to_value(&exported)?, String::new);
            } else {
                match exported.key {
                    Value::String(pem) => print!("{pem}"),
                    jwk => println!("{}", serde_json::to_string_pretty(&jwk)?),
                }
            }
        }
        KeysCommand::Rewrap { json } => rewrap(ops.settings, ops.store, json).await?,
    }
    Ok(())
}

/// A Unix time as `2026-12-05 18:20:00Z` (UTC).
pub(super) fn readable_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
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
