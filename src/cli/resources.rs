//! Registered resource servers (RFC 8707): `latchkey resources add|list|remove`. Every change is
//! audited.

use super::{Json, now, print};
use crate::domain::resource::{Resource, validate_uri};
use crate::domain::{is_scope_token, parse_scope};
use crate::store::{AuditEvent, Store};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum ResourcesCommand {
    /// Register a resource server: tokens asked for it (`resource=URI`) name it as their `aud`
    Add {
        /// The resource indicator: an absolute URI, such as https://api.example.com
        uri: String,
        /// A scope a token for this resource may carry (repeatable)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        json: Json,
    },
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Forget a resource server; tokens already issued for it live out their lifetime
    Remove {
        uri: String,
        #[command(flatten)]
        json: Json,
    },
}

pub async fn resources(store: &Store, command: ResourcesCommand) -> anyhow::Result<()> {
    match command {
        ResourcesCommand::Add { uri, scopes, json } => {
            validate_uri(&uri).map_err(anyhow::Error::msg)?;
            let scopes = parse_scope(&scopes.join(" "));
            if let Some(s) = scopes.iter().find(|s| !is_scope_token(s)) {
                anyhow::bail!("--scope {s}: not a scope token (RFC 6749 §3.3)");
            }
            let resource = Resource { uri, scopes, created_at: now() };
            if !store.insert_resource(&resource).await? {
                anyhow::bail!("resource {} is already registered", resource.uri);
            }
            let event = AuditEvent::new("admin.resource_added").detail("resource", resource.uri.clone());
            store.audit(event, now()).await;
            print(json.json, serde_json::to_value(&resource)?, || format!("registered resource {}", resource.uri));
        }
        ResourcesCommand::List { json } => {
            let list = store.list_resources().await?;
            print(json.json, serde_json::to_value(&list)?, || {
                list.iter().map(|r| format!("{}  {}", r.uri, r.scopes.join(" "))).collect::<Vec<_>>().join("\n")
            });
        }
        ResourcesCommand::Remove { uri, json } => {
            if !store.remove_resource(&uri).await? {
                anyhow::bail!("no resource {uri}");
            }
            store.audit(AuditEvent::new("admin.resource_removed").detail("resource", uri.clone()), now()).await;
            print(json.json, json!({ "removed": uri }), || format!("removed resource {uri}"));
        }
    }
    Ok(())
}
