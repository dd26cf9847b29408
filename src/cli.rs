//! The operator's command line. Every command works against the same settings and database as
//! a running server, and every command that prints can print JSON (`--json`).

use crate::admin::clients::{ClientUpdate, KeyInput, NewClient, SecurityInput, TlsSubjectFields};
use crate::admin::{self, Actor, Ops};
use crate::config::Settings;
use crate::domain::AuthMethod;
use crate::domain::client::{AccessTokenFormat, Profile};
use crate::keys::Alg;
use crate::passwords::Passwords;
use crate::store::Store;
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
    /// Time argon2id password checks on `login.password_workers` workers at once: the most
    /// password sign-ins a second this machine can take with these settings
    PasswordSpeed {
        /// How long to measure
        #[arg(long, default_value_t = 5)]
        seconds: u64,
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
        /// What its access tokens are: `jwt` (RFC 9068; resource servers verify them on their
        /// own) or `opaque` (checked at introspection and userinfo; one signature less each)
        #[arg(long = "access-token-format", default_value = "jwt", value_parser = AccessTokenFormat::ALL.map(AccessTokenFormat::as_str))]
        access_token_format: String,
        #[command(flatten)]
        security: SecurityArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Where logout tokens are POSTed when a session it signed in with ends (OIDC
        /// Back-Channel Logout; https, http only on loopback)
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// Loaded in a frame of the signed-out page with iss and sid (OIDC Front-Channel Logout;
        /// https, http only on loopback)
        #[arg(long = "frontchannel-logout-uri")]
        frontchannel_logout_uri: Option<String>,
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
        /// Whether the client's access tokens are bound to its certificate (RFC 8705 §3)
        #[arg(long = "cert-bound-tokens", value_name = "true|false")]
        cert_bound: Option<bool>,
        #[command(flatten)]
        tls_subject: TlsSubjectArgs,
        /// What its access tokens are from now on: `jwt` or `opaque` (those issued stay valid)
        #[arg(long = "access-token-format", value_parser = AccessTokenFormat::ALL.map(AccessTokenFormat::as_str))]
        access_token_format: Option<String>,
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
        /// Another way to authenticate (not to or from none); a client without a secret the
        /// method can use is issued one, printed once (always, when it moves to
        /// client_secret_jwt)
        #[arg(long = "auth-method", value_parser = AuthMethod::ALL.map(AuthMethod::as_str))]
        auth_method: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        json: Json,
    },
    /// Issue an initial access token for the registration endpoint (RFC 7591 §3): whoever holds
    /// it may register clients there until it expires; printed once, kept only as a hash
    Token {
        /// How long it works: seconds, or a number followed by s, m, h or d
        #[arg(long, default_value = "1h", value_parser = duration_secs)]
        expires: i64,
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
    /// The only algorithm accepted for its client assertions (default: any of its method):
    /// RS256, PS256, ES256 or EdDSA for private_key_jwt, HS256, HS384 or HS512 for
    /// client_secret_jwt
    #[arg(long = "token-auth-alg",
          value_parser = clap::builder::PossibleValuesParser::new(crate::domain::client::AuthAlg::names()))]
    token_auth_alg: Option<String>,
}

impl KeyArgs {
    /// The flags as the operation takes them: the JWK Set read from its file.
    fn input(self) -> anyhow::Result<KeyInput> {
        let jwks = match &self.jwks {
            Some(file) => {
                let text =
                    std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("--jwks {}: {e}", file.display()))?;
                Some(serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--jwks {}: {e}", file.display()))?)
            }
            None => None,
        };
        Ok(KeyInput {
            jwks,
            jwks_uri: self.jwks_uri,
            request_object_alg: self.request_object_alg,
            token_auth_alg: self.token_auth_alg,
        })
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
        #[command(flatten)]
        json: Json,
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
    /// A user's live browser sessions, the most recently used first
    Sessions {
        username: String,
        #[command(flatten)]
        json: Json,
    },
    /// End a user's sessions (every one, or the one named) and revoke the grants obtained in them
    SignOut {
        username: String,
        /// Only this session (an id from `users sessions`)
        #[arg(long, allow_hyphen_values = true)]
        session: Option<String>,
        #[command(flatten)]
        json: Json,
    },
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
    let result = runtime.block_on(run(cli));
    crate::logging::flush();
    match result {
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
        Command::Config { command: ConfigCommand::PasswordSpeed { seconds, json } } => {
            password_speed(&settings, seconds, json).await
        }
        Command::Config { .. } => unreachable!("answered above"),
        Command::Migrate { batch_size, batches, json } => {
            let store = Store::connect(&settings, crate::clock::Clock::from_env()).await?;
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
        command => {
            let store = open(&settings).await?;
            let passwords = Passwords::new(settings.login.password_workers, settings.login.password_queue);
            let ops = ops(&store, &settings, &passwords);
            match command {
                Command::Clients { command } => clients(&ops, *command).await,
                Command::Users { command } => users(&ops, command).await,
                Command::Keys { command } => keys::run(&ops, command).await,
                Command::Audit(args) => audit::run(&ops, args).await,
                Command::Groups { command } => access::groups(&ops, command).await,
                Command::Resources { command } => resources::resources(ops.store, command).await,
                Command::Serve { .. } | Command::Migrate { .. } | Command::Config { .. } => {
                    unreachable!("answered above")
                }
            }
        }
    }
}

/// `config password-speed`: checks a second, and the time one takes.
async fn password_speed(settings: &Settings, seconds: u64, json: Json) -> anyhow::Result<()> {
    let passwords = Passwords::new(settings.login.password_workers, settings.login.password_queue);
    let speed = passwords.speed(std::time::Duration::from_secs(seconds)).await?;
    let p = &speed.params;
    let value = json!({
        "algorithm": "argon2id", "m_cost_kib": p.m_cost(), "t_cost": p.t_cost(), "p_cost": p.p_cost(),
        "workers": speed.workers, "checks": speed.checks, "seconds": speed.elapsed.as_secs_f64(),
        "checks_per_second": speed.per_second(), "ms_each": speed.ms_each(),
    });
    print(json.json, value, || {
        format!(
            "argon2id (m={} KiB, t={}, p={}) on {} workers: {:.1} checks a second, {:.1} ms each; \
             at most as many password sign-ins a second",
            p.m_cost(),
            p.t_cost(),
            p.p_cost(),
            speed.workers,
            speed.per_second(),
            speed.ms_each()
        )
    });
    Ok(())
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
    let store = Store::connect(settings, crate::clock::Clock::from_env()).await?;
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

/// The shared operations, as the command line performs them.
fn ops<'a>(store: &'a Store, settings: &'a Settings, passwords: &'a Passwords) -> Ops<'a> {
    Ops { store, settings, passwords, now: now(), actor: Actor::Cli }
}

/// Prints an operation's answer: as it is with `--json`, else the line `text` makes of it.
fn show<T: serde::Serialize>(json: Json, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    print(json.json, serde_json::to_value(value)?, text);
    Ok(())
}

async fn clients(ops: &Ops<'_>, command: ClientsCommand) -> anyhow::Result<()> {
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
            keys,
            resource_server,
            require_pkce,
            allow_http,
            access_token_format,
            security,
            backchannel_logout_uri,
            frontchannel_logout_uri,
            json,
        } => {
            let new = NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                auth_method,
                first_party,
                min_acr: Some(min_acr),
                grant_types,
                scopes,
                id_token_alg: Some(id_token_alg),
                web_origins,
                resource_server,
                require_pkce,
                allow_http,
                access_token_format: Some(access_token_format),
                keys: keys.input()?,
                tls_subject: security.tls_subject.input(),
                security: security.input(),
                backchannel_logout_uri,
                frontchannel_logout_uri,
            };
            let created = admin::clients::add(ops, new).await?;
            show(json, &created, || match &created.client_secret {
                Some(s) => {
                    format!("client_id:     {}\nclient_secret: {s}\n(the secret is shown only now)", created.client_id)
                }
                None => format!("client_id: {}", created.client_id),
            })?;
        }
        ClientsCommand::List { json } => {
            let list = admin::clients::list(ops).await?;
            show(json, &list, || {
                list.iter()
                    .map(|c| format!("{}  {}  {}", c.id, c.auth_method.as_str(), c.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        ClientsCommand::Show { id, json } => {
            let c = admin::clients::show(ops, &id).await?;
            show(json, &c, || serde_json::to_string_pretty(&c).unwrap_or_default())?;
        }
        ClientsCommand::Update {
            id,
            web_origins,
            redirect_uris,
            resource_server,
            require_pkce,
            require_par,
            dpop_bound,
            cert_bound,
            tls_subject,
            access_token_format,
            exchange_from,
            allow_http,
            required_groups,
            any_group,
            auth_method,
            keys,
            json,
        } => {
            let change = ClientUpdate {
                web_origins: (!web_origins.is_empty()).then_some(web_origins),
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                resource_server,
                require_pkce,
                allow_http,
                required_groups: (any_group || !required_groups.is_empty()).then_some(required_groups),
                require_pushed_authorization_requests: require_par,
                dpop_bound_access_tokens: dpop_bound,
                token_exchange_from: (!exchange_from.is_empty()).then_some(exchange_from),
                tls_subject: tls_subject.input(),
                tls_client_certificate_bound_access_tokens: cert_bound,
                access_token_format,
                auth_method,
                keys: keys.input()?,
            };
            let changed = admin::clients::update(ops, &id, change).await?;
            let line = serde_json::to_string(&changed)?;
            show(json, &changed, || match &changed.client_secret {
                Some(_) => format!("updated client {id}: {line}\n(the secret is shown only now)"),
                None => format!("updated client {id}: {line}"),
            })?;
        }
        ClientsCommand::Token { expires, json } => {
            let issued = admin::clients::initial_access_token(ops, expires).await?;
            show(json, &issued, || {
                format!("initial access token: {}\n(valid {expires} s; shown only now)", issued.initial_access_token)
            })?;
        }
        ClientsCommand::Roles { command } => access::roles(ops, command).await?,
        ClientsCommand::Remove { id, json } => {
            admin::clients::remove(ops, &id).await?;
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
    /// PKCE, private_key_jwt or mTLS, DPoP or certificate-bound tokens, PS256/ES256/EdDSA)
    #[arg(long = "profile", value_parser = Profile::ALL.map(Profile::as_str))]
    profile: Option<String>,
    /// A client whose tokens this client may exchange for tokens of its own (RFC 8693; its own
    /// always; repeatable; `*` for any)
    #[arg(long = "exchange-from", allow_hyphen_values = true)]
    exchange_from: Vec<String>,
    /// The client's access tokens are bound to its certificate, passed by the TLS proxy
    /// (`cnf.x5t#S256`, RFC 8705 §3)
    #[arg(long = "cert-bound-tokens")]
    cert_bound: bool,
    #[command(flatten)]
    tls_subject: TlsSubjectArgs,
}

impl SecurityArgs {
    fn input(self) -> SecurityInput {
        SecurityInput {
            require_pushed_authorization_requests: self.require_par,
            dpop_bound_access_tokens: self.dpop_bound,
            profile: self.profile,
            token_exchange_from: self.exchange_from,
            tls_client_certificate_bound_access_tokens: self.cert_bound,
        }
    }
}

/// The certificate subject a `tls_client_auth` client is known by (RFC 8705 §2.1.2): one of
/// these.
#[derive(Args)]
#[group(multiple = false)]
struct TlsSubjectArgs {
    /// Its certificate's subject DN, as RFC 4514 writes it (CN=client,O=Example,C=SE)
    #[arg(long = "tls-subject-dn")]
    dn: Option<String>,
    /// A DNS name among its certificate's subject alternative names
    #[arg(long = "tls-san-dns")]
    dns: Option<String>,
    /// A URI among its certificate's subject alternative names
    #[arg(long = "tls-san-uri")]
    uri: Option<String>,
    /// An IP address among its certificate's subject alternative names
    #[arg(long = "tls-san-ip")]
    ip: Option<String>,
    /// An email address among its certificate's subject alternative names
    #[arg(long = "tls-san-email")]
    email: Option<String>,
}

impl TlsSubjectArgs {
    fn input(&self) -> TlsSubjectFields {
        TlsSubjectFields {
            tls_client_auth_subject_dn: self.dn.clone(),
            tls_client_auth_san_dns: self.dns.clone(),
            tls_client_auth_san_uri: self.uri.clone(),
            tls_client_auth_san_ip: self.ip.clone(),
            tls_client_auth_san_email: self.email.clone(),
        }
    }
}

/// `90`, `90s`, `15m`, `1h`, `7d`: a positive number of seconds.
fn duration_secs(v: &str) -> Result<i64, String> {
    let (n, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{v}': give seconds, or a number followed by s, m, h or d")),
    };
    match n.parse::<i64>() {
        Ok(n) if n > 0 => n.checked_mul(scale).ok_or_else(|| format!("'{v}' is too long")),
        _ => Err(format!("'{v}' is not a positive duration")),
    }
}

/// A new password from standard input (the operation checks it against the policy).
fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&s).to_owned())
}

async fn users(ops: &Ops<'_>, command: UsersCommand) -> anyhow::Result<()> {
    use admin::users;
    match command {
        UsersCommand::Add { username, email, password_stdin, claims, json } => {
            let mut map = serde_json::Map::new();
            for c in &claims {
                let (k, v) = c.split_once('=').ok_or_else(|| anyhow::anyhow!("'{c}' is not NAME=VALUE"))?;
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            let password = if password_stdin { Some(read_password()?) } else { None };
            let created = users::add(ops, users::NewUser { username, email, password, claims: map }).await?;
            show(json, &created, || format!("created user {} ({})", created.username, created.id))?;
        }
        UsersCommand::List { json } => {
            let list = users::list(ops).await?;
            show(json, &list, || {
                list.iter()
                    .map(|u| {
                        format!("{}  {}  {}{}", u.id, u.username, u.email, if u.disabled { "  (disabled)" } else { "" })
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        UsersCommand::SetPassword { username, json, .. } => {
            users::set_password(ops, &username, read_password()?).await?;
            let changed = serde_json::json!({ "username": username, "sessions_ended": true, "grants_revoked": true });
            show(json, &changed, || {
                format!("password changed for {username}; their sessions are ended and their grants revoked")
            })?;
        }
        UsersCommand::Disable { username, json } => {
            let changed = users::disable(ops, &username).await?;
            show(json, &changed, || format!("disabled {username}; their sessions and grants are revoked"))?;
        }
        UsersCommand::Enable { username, json } => {
            let changed = users::enable(ops, &username).await?;
            show(json, &changed, || format!("enabled {username}; they can sign in again"))?;
        }
        UsersCommand::Show { username, json } => {
            let user = users::show(ops, &username).await?;
            show(json, &user, || serde_json::to_string_pretty(&user).unwrap_or_default())?;
        }
        UsersCommand::Remove { username, json } => {
            let removed = users::remove(ops, &username).await?;
            print(json.json, json!({ "removed": removed.id, "username": username }), || {
                format!("removed {username} and their credentials, sessions and grants")
            });
        }
        UsersCommand::Access(command) => access::users(ops, command).await?,
        UsersCommand::Sessions { username, json } => {
            let list = admin::sessions::list(ops, &username).await?;
            show(json, &list, || {
                list.iter()
                    .map(|s| {
                        let last = keys::readable_time(s.last_seen_at);
                        let ip = s.ip.as_deref().unwrap_or("-");
                        format!("{}  last used {last}  from {ip}  {}", s.id, s.user_agent.as_deref().unwrap_or("-"))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        UsersCommand::SignOut { username, session, json } => {
            let ended = match session {
                Some(id) => admin::sessions::end(ops, &username, &id).await?,
                None => admin::sessions::end_all(ops, &username).await?,
            };
            show(json, &ended, || {
                format!("ended {} session(s) of {username} and revoked their grants", ended.ended.len())
            })?;
        }
        UsersCommand::ResetFactors { username, json } => {
            let reset = users::reset_factors(ops, &username).await?;
            show(json, &reset, || {
                format!(
                    "removed {} second factor(s) and the recovery codes of {username}; their sessions are ended and their grants revoked",
                    reset.factors_removed
                )
            })?;
        }
    }
    Ok(())
}
