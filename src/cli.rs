//! The operator's command line. Every command works against the same settings and database as
//! a running server, and every command that prints can print JSON (`--json`).

use crate::config::{PasswordPolicy, Settings};
use crate::crypto::{hash_secret, random_id, random_token};
use crate::domain::claims::SCOPES_SUPPORTED;
use crate::domain::client::{
    ClientKeys, ClientSecurity, FAPI2_ALGS, ObjectAlg, Profile, allowed_origins, validate_jwks, validate_jwks_uri,
    validate_redirect_uri, validate_web_origin,
};
use crate::domain::password_policy;
use crate::domain::user::parse_claim;
use crate::domain::{AuthMethod, Client, GrantType, User, is_scope_token};
use crate::keys::Alg;
use crate::passwords::Passwords;
use crate::store::{AuditEvent, Store};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

mod access;
mod audit;
mod keys;
mod resources;

#[derive(Parser)]
#[command(name = "latchkey", version, about = "An OpenID Connect provider and OAuth 2.0 authorization server")]
struct Cli {
    /// Settings file (default: ./latchkey.toml if present)
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server
    Serve {
        /// Also create a demo user and client, and print how to try a sign-in
        #[arg(long)]
        demo: bool,
    },
    /// Create or update the database schema, and seal personal data still stored in clear
    Migrate {
        /// Rows sealed per transaction
        #[arg(long, default_value_t = crate::store::sealed::BATCH)]
        batch_size: u64,
        /// Seal at most this many batches, then stop (the next run or start seals the rest)
        #[arg(long)]
        batches: Option<u64>,
        #[command(flatten)]
        json: Json,
    },
    /// Check the settings; prints one line per problem
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage registered applications (OAuth clients)
    Clients {
        #[command(subcommand)]
        command: Box<ClientsCommand>,
    },
    /// Manage user accounts
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage signing keys: list, rotate, retire, revoke, import, export, rewrap
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Read the audit log, newest first
    Audit(audit::AuditArgs),
    /// Manage groups of users (released as the `groups` claim, required by clients)
    Groups {
        #[command(subcommand)]
        command: access::GroupsCommand,
    },
    /// Manage resource servers tokens may be issued for (RFC 8707)
    Resources {
        #[command(subcommand)]
        command: resources::ResourcesCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check everything `serve` checks before it starts: one line per problem on stderr, and a
    /// non-zero exit when there is any
    Check {
        #[command(flatten)]
        json: Json,
    },
}

#[derive(Args, Clone, Copy)]
struct Json {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its id and (once) its secret
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE required)
        #[arg(long)]
        public: bool,
        #[arg(long = "auth-method", value_parser = AuthMethod::ALL.map(AuthMethod::as_str))]
        auth_method: Option<String>,
        /// Trusted by the operator: no consent page
        #[arg(long = "first-party")]
        first_party: bool,
        /// The least assurance every sign-in for this client must reach: 1 (one factor) or 2
        /// (two factors); users without a second factor are then refused, not signed in weaker
        #[arg(long = "min-acr", default_value = "1",
              value_parser = clap::builder::PossibleValuesParser::new(crate::login::policy::ACR_VALUES_SUPPORTED))]
        min_acr: String,
        /// Grant types (default: authorization_code refresh_token); `device_code` is the device
        /// authorization grant of RFC 8628, `token_exchange` that of RFC 8693
        #[arg(long = "grant-type", value_parser = ["authorization_code", "refresh_token", "client_credentials", "device_code", "token_exchange"])]
        grant_types: Vec<String>,
        /// A scope the client may be granted for itself with client_credentials (repeatable)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Algorithm of its ID tokens and access tokens (its keys are created if missing)
        #[arg(long = "id-token-alg", default_value = "RS256", value_parser = Alg::ALL.map(Alg::as_str))]
        id_token_alg: String,
        /// An origin whose scripts may call /token, /userinfo and /revoke (CORS), such as
        /// https://app.example.com; `+` means the origins of the redirect URIs (repeatable;
        /// default: +)
        #[arg(long = "web-origin")]
        web_origins: Vec<String>,
        /// A resource server: may introspect tokens issued to other clients
        #[arg(long = "resource-server")]
        resource_server: bool,
        /// Require PKCE of this client even though it is confidential
        #[arg(long = "require-pkce")]
        require_pkce: bool,
        /// Accept plain-http redirect URIs to any host (development only; loopback http is
        /// always accepted)
        #[arg(long = "allow-http")]
        allow_http: bool,
        #[command(flatten)]
        security: SecurityArgs,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        json: Json,
    },
    /// Change a registered client (at least one of its flags; each replaces what it names)
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Replaces the client's web origins (repeatable; `+` means the origins of the
        /// redirect URIs)
        #[arg(long = "web-origin")]
        web_origins: Vec<String>,
        /// Replaces the client's redirect URIs (repeatable)
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Whether the client is a resource server (may introspect other clients' tokens)
        #[arg(long = "resource-server", value_name = "true|false")]
        resource_server: Option<bool>,
        /// Whether PKCE is required of the client even though it is confidential
        #[arg(long = "require-pkce", value_name = "true|false")]
        require_pkce: Option<bool>,
        /// Whether the client must push its authorization requests (RFC 9126)
        #[arg(long = "require-par", value_name = "true|false")]
        require_par: Option<bool>,
        /// Whether the client's token requests must carry a DPoP proof (RFC 9449)
        #[arg(long = "dpop-bound", value_name = "true|false")]
        dpop_bound: Option<bool>,
        /// Replaces the clients whose tokens this client may exchange (RFC 8693; repeatable;
        /// `*` for any; `none` for only its own)
        #[arg(long = "exchange-from", allow_hyphen_values = true)]
        exchange_from: Vec<String>,
        /// Accept plain-http redirect URIs to any host (development only)
        #[arg(long = "allow-http")]
        allow_http: bool,
        /// Replaces the groups the client requires: a user in none of them is refused
        /// (repeatable)
        #[arg(long = "require-group", conflicts_with = "any_group")]
        required_groups: Vec<String>,
        /// Requires no group any more
        #[arg(long = "any-group")]
        any_group: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        json: Json,
    },
    /// A client's roles (released as the `roles` claim)
    Roles {
        #[command(subcommand)]
        command: access::RolesCommand,
    },
    List {
        #[command(flatten)]
        json: Json,
    },
    Show {
        /// Client ids are base64url and may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        json: Json,
    },
    /// Remove a client and revoke everything it holds
    Remove {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        json: Json,
    },
}

/// A client's own keys and what it signs with them (request objects, private_key_jwt).
#[derive(Args)]
struct KeyArgs {
    /// The client's public keys: a JWK Set at this URL (https; http only on loopback), fetched
    /// when needed and cached, so the client can rotate its keys
    #[arg(long = "jwks-uri", conflicts_with = "jwks")]
    jwks_uri: Option<String>,
    /// The client's public keys: a JWK Set read from this file
    #[arg(long = "jwks")]
    jwks: Option<PathBuf>,
    /// The only algorithm accepted for its request objects; `none` allows unsigned ones
    /// (default: any signed one)
    #[arg(long = "request-object-alg",
          value_parser = clap::builder::PossibleValuesParser::new(crate::oidc::authorize::request_object::algs_supported()))]
    request_object_alg: Option<String>,
    /// The only algorithm accepted for its private_key_jwt assertions (default: any)
    #[arg(long = "token-auth-alg", value_parser = Alg::ALL.map(Alg::as_str))]
    token_auth_alg: Option<String>,
}

impl KeyArgs {
    fn is_empty(&self) -> bool {
        self.jwks_uri.is_none()
            && self.jwks.is_none()
            && self.request_object_alg.is_none()
            && self.token_auth_alg.is_none()
    }

    /// Writes what was given over `keys`: a new JWK Set replaces the old, inline or by URL.
    fn apply(self, keys: &mut ClientKeys) -> anyhow::Result<()> {
        if let Some(uri) = self.jwks_uri {
            validate_jwks_uri(&uri).map_err(anyhow::Error::msg)?;
            (keys.jwks, keys.jwks_uri) = (None, Some(uri));
        }
        if let Some(file) = self.jwks {
            let json = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("--jwks {}: {e}", file.display()))?;
            validate_jwks(&json).map_err(|e| anyhow::anyhow!("--jwks {}: {e}", file.display()))?;
            (keys.jwks, keys.jwks_uri) = (Some(json), None);
        }
        if let Some(alg) = self.request_object_alg {
            keys.request_object_signing_alg = ObjectAlg::parse(&alg);
        }
        if let Some(alg) = self.token_auth_alg {
            keys.token_endpoint_auth_signing_alg = Alg::parse(&alg);
        }
        Ok(())
    }
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from standard input
        #[arg(long = "password-stdin")]
        password_stdin: bool,
        /// A standard claim, NAME=VALUE (address as JSON)
        #[arg(long = "claim")]
        claims: Vec<String>,
        #[command(flatten)]
        json: Json,
    },
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Set a user's password, read from standard input; ends their sessions and revokes their
    /// grants (refresh tokens included)
    SetPassword {
        username: String,
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
    },
    /// Disable a user: ends their sessions and revokes their grants
    Disable {
        username: String,
        #[command(flatten)]
        json: Json,
    },
    /// Enable a disabled user again (they sign in anew)
    Enable {
        username: String,
        #[command(flatten)]
        json: Json,
    },
    /// A user's account: id, email, claims, whether disabled, groups
    Show {
        username: String,
        #[command(flatten)]
        json: Json,
    },
    /// Remove a user and their credentials, sessions, grants and consents
    Remove {
        username: String,
        #[command(flatten)]
        json: Json,
    },
    #[command(flatten)]
    Access(access::UsersAccess),
    /// For a user locked out of their second factor, once you have checked who is asking:
    /// removes every second factor (authenticator app, emailed codes, passkeys) and recovery
    /// code, ends their sessions and revokes their grants, so the next sign-in needs only the
    /// password (or upstream account) and the user can set up a new factor
    ResetFactors {
        username: String,
        #[command(flatten)]
        json: Json,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match crate::logging::Format::from_env() {
        Ok(format) => crate::logging::init(format),
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, for scripts and log collectors: a parse error's snippet folds into it.
            let message = format!("{e:#}");
            let line: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            eprintln!("latchkey: {}", line.join(" "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config { command: ConfigCommand::Check { json } } = cli.command {
        return config_check(cli.config.as_deref(), json);
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { demo } => crate::server::run(settings, demo).await,
        Command::Config { .. } => unreachable!("answered above"),
        Command::Migrate { batch_size, batches, json } => {
            let store = Store::connect(&settings).await?;
            let (conflicts, sealing) = store.migrate_sealing(batch_size, batches).await?;
            // Accounts that differ only in case: the operator renames one of each pair.
            for c in &conflicts {
                eprintln!("warning: {c}");
            }
            let listed: Vec<_> =
                conflicts.iter().map(|c| json!({ "user": c.user_id, "field": c.field, "same_as": c.holder })).collect();
            let value =
                json!({ "migrated": true, "conflicts": listed, "sealed": sealing.rows, "plain_left": sealing.more });
            print(json.json, value, || match (sealing.rows, sealing.more) {
                (0, false) => "database is up to date".into(),
                (n, false) => format!("database is up to date; sealed the personal data of {n} rows written in clear"),
                (n, true) => format!(
                    "schema up to date; sealed the personal data of {n} rows, more rows are still in clear (the next migrate or start seals them)"
                ),
            });
            Ok(())
        }
        Command::Clients { command } => clients(&open(&settings).await?, &settings, *command).await,
        Command::Users { command } => users(&open(&settings).await?, &settings, command).await,
        Command::Keys { command } => keys::run(&settings, command).await,
        Command::Audit(args) => audit::run(&open(&settings).await?, args).await,
        Command::Groups { command } => access::groups(&open(&settings).await?, command).await,
        Command::Resources { command } => resources::resources(&open(&settings).await?, command).await,
    }
}

/// `config check`: the settings' own checks and the key-encryption key's, each problem one line
/// on stderr (and in `problems` with `--json`); exits non-zero when there is any.
fn config_check(file: Option<&std::path::Path>, json: Json) -> anyhow::Result<()> {
    let problems = match Settings::load_unchecked(file) {
        Ok(settings) => {
            let mut p = settings.problems();
            p.extend(crate::keys::kek::problems(&settings.keys_dir));
            p.extend(crate::dirs::problems(&settings));
            p
        }
        // A file that does not parse, or a variable that is not a number: nothing else can be
        // checked.
        Err(e) => vec![format!("{e:#}").replace('\n', " ")],
    };
    for p in &problems {
        eprintln!("{p}");
    }
    if json.json {
        println!("{}", json!({ "valid": problems.is_empty(), "problems": problems }));
    } else if problems.is_empty() {
        println!("settings are valid");
    }
    if problems.is_empty() { Ok(()) } else { std::process::exit(1) }
}

async fn open(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(settings).await?;
    store.migrate().await?;
    Ok(store)
}

/// The CLI's time: the system clock, or the test clock the server it manages also reads.
fn now() -> i64 {
    crate::clock::Clock::from_env().now()
}

fn print(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        println!("{}", text());
    }
}

async fn clients(store: &Store, settings: &Settings, command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            auth_method,
            first_party,
            min_acr,
            grant_types,
            scopes,
            id_token_alg,
            web_origins,
            keys: key_args,
            resource_server,
            require_pkce,
            allow_http,
            security,
            json,
        } => {
            let mut keys = ClientKeys::default();
            key_args.apply(&mut keys)?;
            let security = security.client_security();
            for uri in redirect_uris.iter().chain(&post_logout_redirect_uris) {
                validate_redirect_uri(uri, allow_http).map_err(anyhow::Error::msg)?;
            }
            for o in &web_origins {
                validate_web_origin(o).map_err(anyhow::Error::msg)?;
            }
            let auth_method = match (public, auth_method.as_deref()) {
                (true, None | Some("none")) => AuthMethod::None,
                (true, Some(m)) => anyhow::bail!("--public clients authenticate with none, not {m}"),
                (false, Some(m)) => AuthMethod::parse(m).expect("clap checked the value"),
                (false, None) => AuthMethod::ClientSecretBasic,
            };
            let grant_types: Vec<GrantType> = if grant_types.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                grant_types.iter().filter_map(|g| GrantType::parse_short(g)).collect()
            };
            if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
                anyhow::bail!("a client using authorization_code needs at least one --redirect-uri");
            }
            if auth_method == AuthMethod::PrivateKeyJwt && !keys.has_keys() {
                anyhow::bail!("a private_key_jwt client needs its keys: --jwks-uri or --jwks");
            }
            if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
                anyhow::bail!("a public client cannot use client_credentials");
            }
            if auth_method == AuthMethod::None && grant_types.contains(&GrantType::TokenExchange) {
                anyhow::bail!("a public client cannot use token_exchange");
            }
            let scopes = crate::domain::parse_scope(&scopes.join(" "));
            if let Some(s) = scopes.iter().find(|s| !is_scope_token(s) || SCOPES_SUPPORTED.contains(&s.as_str())) {
                anyhow::bail!("--scope {s}: not a scope a client can hold for itself");
            }
            let alg = Alg::parse(&id_token_alg).expect("clap checked the value");
            if security.profile == Some(Profile::Fapi2) {
                fapi2_registration(auth_method, alg, &keys, allow_http)?;
            }
            // The first client of an algorithm brings its keys into being.
            let plan = crate::keys::lifecycle::ensure(&store.signing_keys().await?, alg);
            if !plan.is_empty() {
                let kek = crate::keys::kek::Kek::load_or_create(&settings.keys_dir)?;
                crate::keys::apply(store, &kek, &plan, now(), "cli clients add").await?;
            }
            let secret = auth_method.uses_secret().then(random_token);
            let client = Client {
                id: random_id(),
                name,
                secret_hash: secret.as_deref().map(hash_secret),
                auth_method,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                scopes,
                first_party,
                min_acr: crate::login::policy::acr_level(&min_acr).expect("clap checked the value"),
                resource_server,
                require_pkce,
                created_at: now(),
                id_token_signed_response_alg: alg,
                keys,
                security,
            };
            store.insert_client(&client).await?;
            if !web_origins.is_empty() {
                store.set_client_web_origins(&client.id, &web_origins).await?;
            }
            store.audit(AuditEvent::new("admin.client_added").client(&client.id), now()).await;
            print(json.json, json!({ "client_id": client.id, "client_secret": secret }), || match &secret {
                Some(s) => format!("client_id:     {}\nclient_secret: {s}\n(the secret is shown only now)", client.id),
                None => format!("client_id: {}", client.id),
            });
        }
        ClientsCommand::List { json } => {
            let list = store.list_clients().await?;
            print(json.json, serde_json::to_value(&list)?, || {
                list.iter()
                    .map(|c| format!("{}  {}  {}", c.id, c.auth_method.as_str(), c.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ClientsCommand::Show { id, json } => {
            let c = store.client(&id).await?.ok_or_else(|| anyhow::anyhow!("no client {id}"))?;
            let mut value = serde_json::to_value(&*c)?;
            let web_origins = store.client_web_origins(&id).await?.unwrap_or_default();
            value["web_origins"] = json!(web_origins);
            value["allowed_origins"] = json!(allowed_origins(&web_origins, &c.redirect_uris));
            value["required_groups"] = json!(store.required_groups(&id).await?);
            value["roles"] = json!(store.client_roles(&id).await?);
            print(json.json, value.clone(), || serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        ClientsCommand::Update {
            id,
            web_origins,
            redirect_uris,
            resource_server,
            require_pkce,
            require_par,
            dpop_bound,
            exchange_from,
            allow_http,
            required_groups,
            any_group,
            keys: key_args,
            json,
        } => {
            let nothing = web_origins.is_empty()
                && redirect_uris.is_empty()
                && resource_server.is_none()
                && require_pkce.is_none()
                && require_par.is_none()
                && dpop_bound.is_none()
                && exchange_from.is_empty()
                && required_groups.is_empty()
                && !any_group
                && key_args.is_empty();
            if nothing {
                anyhow::bail!(
                    "nothing to change: give --web-origin, --redirect-uri, --resource-server, --require-pkce, \
                     --require-par, --dpop-bound, --exchange-from, \
                     --require-group, --any-group, --jwks-uri, --jwks, --request-object-alg or --token-auth-alg"
                );
            }
            let Some(client) = store.client(&id).await? else { anyhow::bail!("no client {id}") };
            for o in &web_origins {
                validate_web_origin(o).map_err(anyhow::Error::msg)?;
            }
            for uri in &redirect_uris {
                validate_redirect_uri(uri, allow_http).map_err(anyhow::Error::msg)?;
            }
            for g in &required_groups {
                if !store.group_exists(g).await? {
                    anyhow::bail!("--require-group {g}: no such group (groups add {g})");
                }
            }
            let mut changed = json!({ "client_id": id });
            if !key_args.is_empty() {
                let mut keys = client.keys.clone();
                key_args.apply(&mut keys)?;
                store.set_client_keys(&id, &keys).await?;
                changed["keys"] = serde_json::to_value(&keys)?;
            }
            if !web_origins.is_empty() {
                store.set_client_web_origins(&id, &web_origins).await?;
                changed["web_origins"] = json!(web_origins);
            }
            if any_group || !required_groups.is_empty() {
                store.set_required_groups(&id, &required_groups).await?;
                changed["required_groups"] = json!(required_groups);
            }
            let flags = [resource_server, require_pkce, require_par, dpop_bound];
            if !redirect_uris.is_empty() || flags.iter().any(Option::is_some) || !exchange_from.is_empty() {
                let mut c = (*client).clone();
                if !redirect_uris.is_empty() {
                    c.redirect_uris = redirect_uris;
                    changed["redirect_uris"] = json!(c.redirect_uris);
                }
                if let Some(flag) = resource_server {
                    c.resource_server = flag;
                    changed["resource_server"] = json!(flag);
                }
                if let Some(flag) = require_pkce {
                    c.require_pkce = flag;
                    changed["require_pkce"] = json!(flag);
                }
                if let Some(flag) = require_par {
                    c.security.require_par = flag;
                    changed["require_pushed_authorization_requests"] = json!(flag);
                }
                if let Some(flag) = dpop_bound {
                    c.security.dpop_bound = flag;
                    changed["dpop_bound_access_tokens"] = json!(flag);
                }
                if !exchange_from.is_empty() {
                    c.security.token_exchange_from = exchange_from.into_iter().filter(|c| c != "none").collect();
                    changed["token_exchange_from"] = json!(c.security.token_exchange_from);
                }
                store.update_client(&c).await?;
            }
            let mut event = AuditEvent::new("admin.client_updated").client(&id);
            for key in [
                "web_origins",
                "required_groups",
                "redirect_uris",
                "resource_server",
                "require_pkce",
                "require_pushed_authorization_requests",
                "dpop_bound_access_tokens",
                "token_exchange_from",
                "keys",
            ] {
                if let Some(v) = changed.get(key) {
                    event = event.detail(key, v.clone());
                }
            }
            store.audit(event, now()).await;
            print(json.json, changed.clone(), || format!("updated client {id}: {changed}"));
        }
        ClientsCommand::Roles { command } => access::roles(store, command).await?,
        ClientsCommand::Remove { id, json } => {
            if !store.remove_client(&id, now()).await? {
                anyhow::bail!("no client {id}");
            }
            store.audit(AuditEvent::new("admin.client_removed").client(&id), now()).await;
            print(json.json, json!({ "removed": id }), || format!("removed client {id}"));
        }
    }
    Ok(())
}

/// A client's high-security options at registration (issue #17).
#[derive(Args)]
struct SecurityArgs {
    /// The client must push its authorization requests (RFC 9126)
    #[arg(long = "require-par")]
    require_par: bool,
    /// The client's token requests must carry a DPoP proof; its tokens are bound to the key
    /// (RFC 9449)
    #[arg(long = "dpop-bound")]
    dpop_bound: bool,
    /// A security profile: `fapi2` holds the client to the FAPI 2.0 Security Profile (PAR,
    /// PKCE, private_key_jwt, DPoP, PS256/ES256/EdDSA)
    #[arg(long = "profile", value_parser = Profile::ALL.map(Profile::as_str))]
    profile: Option<String>,
    /// A client whose tokens this client may exchange for tokens of its own (RFC 8693; its own
    /// always; repeatable; `*` for any)
    #[arg(long = "exchange-from", allow_hyphen_values = true)]
    exchange_from: Vec<String>,
}

impl SecurityArgs {
    fn client_security(&self) -> ClientSecurity {
        ClientSecurity {
            require_par: self.require_par,
            dpop_bound: self.dpop_bound,
            profile: self.profile.as_deref().map(|p| Profile::parse(p).expect("clap checked the value")),
            token_exchange_from: self.exchange_from.clone(),
        }
    }
}

/// What the FAPI 2.0 Security Profile asks of a client's registration, each refused with the
/// clause that asks it.
fn fapi2_registration(auth_method: AuthMethod, alg: Alg, keys: &ClientKeys, allow_http: bool) -> anyhow::Result<()> {
    let fapi_alg = |a: Alg| FAPI2_ALGS.contains(&a);
    if auth_method != AuthMethod::PrivateKeyJwt {
        anyhow::bail!(
            "--profile fapi2: the client authenticates with private_key_jwt (FAPI 2.0 §5.3.2.1-6), not {}",
            auth_method.as_str()
        );
    }
    if !fapi_alg(alg) {
        anyhow::bail!("--profile fapi2: --id-token-alg PS256, ES256 or EdDSA (FAPI 2.0 §5.4.1), not {alg}");
    }
    if keys.token_endpoint_auth_signing_alg.is_some_and(|a| !fapi_alg(a)) {
        anyhow::bail!("--profile fapi2: --token-auth-alg PS256, ES256 or EdDSA (FAPI 2.0 §5.4.1)");
    }
    if allow_http {
        anyhow::bail!("--profile fapi2: no plain-http redirect URIs (FAPI 2.0 §5.3.2.2-8)");
    }
    Ok(())
}

/// A new password from standard input, checked against the password policy like any other.
fn read_password(policy: &PasswordPolicy, identifiers: &[&str]) -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let s = s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&s).to_owned();
    password_policy::check(policy, &s, identifiers)
        .map_err(|refusal| anyhow::anyhow!("password refused: {refusal}"))?;
    Ok(s)
}

async fn users(store: &Store, settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let passwords = Passwords::new(settings.login.password_workers, settings.login.password_queue);
    match command {
        UsersCommand::Add { username, email, password_stdin, claims, json } => {
            if username.trim().is_empty() || username.contains(char::is_whitespace) {
                anyhow::bail!("--username must be non-empty and without spaces");
            }
            if !email.contains('@') {
                anyhow::bail!("--email must be an email address");
            }
            let mut map = serde_json::Map::new();
            for c in &claims {
                let (k, v) = parse_claim(c).map_err(anyhow::Error::msg)?;
                map.insert(k, v);
            }
            let password_hash = match password_stdin {
                true => Some(passwords.hash(read_password(&settings.password, &[&username, &email])?).await?),
                false => None,
            };
            let t = now();
            let user = User {
                id: random_id(),
                username,
                email,
                password_hash,
                claims: map,
                disabled: false,
                status: Default::default(),
                created_at: t,
                updated_at: t,
            };
            match store.login_taken(&user.username, &user.email).await? {
                (true, _) => anyhow::bail!("a user named {} exists already (ignoring case)", user.username),
                (_, true) => anyhow::bail!("another user has the email {} (ignoring case)", user.email),
                _ => {}
            }
            if !store.create_user(&user).await? {
                anyhow::bail!("a user with this username or email exists already (ignoring case)");
            }
            store.audit(AuditEvent::new("admin.user_added").user(&user.id), t).await;
            print(json.json, json!({ "id": user.id, "username": user.username }), || {
                format!("created user {} ({})", user.username, user.id)
            });
        }
        UsersCommand::List { json } => {
            let list = store.list_users().await?;
            print(json.json, serde_json::to_value(&list)?, || {
                list.iter()
                    .map(|u| {
                        format!("{}  {}  {}{}", u.id, u.username, u.email, if u.disabled { "  (disabled)" } else { "" })
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        UsersCommand::SetPassword { username, .. } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            let password = read_password(&settings.password, &[&user.username, &user.email])?;
            let history = settings.password.history;
            if crate::account::new_password::reused(&passwords, store, history, &user, &password).await? {
                anyhow::bail!("password refused: {}", password_policy::Refusal::Reused(history));
            }
            let hash = passwords.hash(password).await?;
            store.set_password(&user.id, &hash, history, crate::store::SignOut::Everywhere, now()).await?;
            store.audit(AuditEvent::new("admin.password_set").user(&user.id), now()).await;
            println!("password changed for {username}; their sessions are ended and their grants revoked");
        }
        UsersCommand::Disable { username, json } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            store.disable_user(&user.id, now()).await?;
            store.audit(AuditEvent::new("admin.user_disabled").user(&user.id), now()).await;
            print(json.json, json!({ "id": user.id, "username": username, "disabled": true }), || {
                format!("disabled {username}; their sessions and grants are revoked")
            });
        }
        UsersCommand::Enable { username, json } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            store.enable_user(&user.id, now()).await?;
            store.audit(AuditEvent::new("admin.user_enabled").user(&user.id), now()).await;
            print(json.json, json!({ "id": user.id, "username": username, "disabled": false }), || {
                format!("enabled {username}; they can sign in again")
            });
        }
        UsersCommand::Show { username, json } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            let mut value = serde_json::to_value(&user)?;
            value["groups"] = json!(store.user_groups(&user.id).await?);
            print(json.json, value.clone(), || serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        UsersCommand::Remove { username, json } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            store.remove_user(&user.id).await?;
            store.audit(AuditEvent::new("admin.user_removed").user(&user.id), now()).await;
            print(json.json, json!({ "removed": user.id, "username": username }), || {
                format!("removed {username} and their credentials, sessions and grants")
            });
        }
        UsersCommand::Access(command) => access::users(store, command).await?,
        UsersCommand::ResetFactors { username, json } => {
            let user = store.user_by_login(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            let removed = store.reset_second_factors(&user.id, now()).await?;
            let event = AuditEvent::new("admin.factors_reset").user(&user.id).detail("removed", removed.to_string());
            store.audit(event, now()).await;
            print(json.json, json!({ "id": user.id, "username": user.username, "factors_removed": removed }), || {
                format!(
                    "removed {removed} second factor(s) and the recovery codes of {username}; their sessions are ended and their grants revoked"
                )
            });
        }
    }
    Ok(())
}
