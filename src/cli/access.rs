//! Groups and per-client roles: `latchkey groups add|list|remove`, `latchkey users
//! add-to-group|remove-from-group|grant-role|revoke-role`, `latchkey clients roles
//! add|remove|list`. Every change is audited.

use super::{Json, now, print};
use crate::domain::User;
use crate::store::{AuditEvent, GroupRemoval, Store};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// Define a group
    Add {
        name: String,
        #[command(flatten)]
        json: Json,
    },
    /// The groups and how many members each has
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Remove a group and its memberships (refused while a client requires it)
    Remove {
        name: String,
        #[command(flatten)]
        json: Json,
    },
}

/// The `users` commands about groups and roles.
#[derive(Subcommand)]
pub enum UsersAccess {
    /// Put a user in a group
    AddToGroup {
        user: String,
        group: String,
        #[command(flatten)]
        json: Json,
    },
    /// Take a user out of a group
    RemoveFromGroup {
        user: String,
        group: String,
        #[command(flatten)]
        json: Json,
    },
    /// Give a user one of a client's roles
    GrantRole {
        user: String,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        role: String,
        #[command(flatten)]
        json: Json,
    },
    /// Take one of a client's roles from a user
    RevokeRole {
        user: String,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        role: String,
        #[command(flatten)]
        json: Json,
    },
}

#[derive(Subcommand)]
pub enum RolesCommand {
    /// Define a role of a client
    Add {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        role: String,
        #[command(flatten)]
        json: Json,
    },
    /// Remove a role of a client, and take it from every user who has it
    Remove {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        role: String,
        #[command(flatten)]
        json: Json,
    },
    /// A client's roles
    List {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        json: Json,
    },
}

/// Group and role names: what a token claim can carry plainly, and a shell can type.
pub fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if !ok {
        anyhow::bail!("{what} '{name}': 1 to 64 letters, digits and - _ . : /");
    }
    Ok(())
}

async fn user(store: &Store, login: &str) -> anyhow::Result<User> {
    store.user_by_login(login).await?.ok_or_else(|| anyhow::anyhow!("no user {login}"))
}

async fn client(store: &Store, id: &str) -> anyhow::Result<()> {
    store.client(id).await?.map(|_| ()).ok_or_else(|| anyhow::anyhow!("no client {id}"))
}

pub async fn groups(store: &Store, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Add { name, json } => {
            check_name("group", &name)?;
            if !store.insert_group(&name, now()).await? {
                anyhow::bail!("a group named {name} exists already");
            }
            store.audit(AuditEvent::new("admin.group_added").detail("group", name.as_str()), now()).await;
            print(json.json, json!({ "group": name }), || format!("added group {name}"));
        }
        GroupsCommand::List { json } => {
            let list = store.list_groups().await?;
            print(json.json, json!(list), || {
                list.iter().map(|g| format!("{}  {} member(s)", g.name, g.members)).collect::<Vec<_>>().join("\n")
            });
        }
        GroupsCommand::Remove { name, json } => match store.remove_group(&name).await? {
            GroupRemoval::Removed => {
                store.audit(AuditEvent::new("admin.group_removed").detail("group", name.as_str()), now()).await;
                print(json.json, json!({ "removed": name }), || format!("removed group {name}"));
            }
            GroupRemoval::Missing => anyhow::bail!("no group {name}"),
            GroupRemoval::Required(clients) => anyhow::bail!(
                "group {name} is required by client(s) {}; change them first (clients update ID --require-group ...)",
                clients.join(", ")
            ),
        },
    }
    Ok(())
}

pub async fn users(store: &Store, command: UsersAccess) -> anyhow::Result<()> {
    match command {
        UsersAccess::AddToGroup { user: login, group, json } => {
            let u = user(store, &login).await?;
            if !store.group_exists(&group).await? {
                anyhow::bail!("no group {group} (groups add {group})");
            }
            let added = store.add_to_group(&u.id, &group).await?;
            if added {
                let event = AuditEvent::new("admin.group_member_added").user(&u.id).detail("group", group.as_str());
                store.audit(event, now()).await;
            }
            print(json.json, json!({ "user": u.username, "group": group, "changed": added }), || match added {
                true => format!("{} is now in {group}", u.username),
                false => format!("{} was already in {group}", u.username),
            });
        }
        UsersAccess::RemoveFromGroup { user: login, group, json } => {
            let u = user(store, &login).await?;
            let removed = store.remove_from_group(&u.id, &group).await?;
            if !removed {
                anyhow::bail!("{} is not in a group {group}", u.username);
            }
            let event = AuditEvent::new("admin.group_member_removed").user(&u.id).detail("group", group.as_str());
            store.audit(event, now()).await;
            print(json.json, json!({ "user": u.username, "group": group, "changed": true }), || {
                format!("{} is no longer in {group}", u.username)
            });
        }
        UsersAccess::GrantRole { user: login, client_id, role, json } => {
            let u = user(store, &login).await?;
            client(store, &client_id).await?;
            if !store.client_roles(&client_id).await?.contains(&role) {
                anyhow::bail!("client {client_id} has no role {role} (clients roles add {client_id} {role})");
            }
            let granted = store.grant_role(&u.id, &client_id, &role).await?;
            if granted {
                let event = AuditEvent::new("admin.role_granted").user(&u.id).client(&client_id);
                store.audit(event.detail("role", role.as_str()), now()).await;
            }
            print(
                json.json,
                json!({ "user": u.username, "client_id": client_id, "role": role, "changed": granted }),
                || format!("{} has the role {role} at {client_id}", u.username),
            );
        }
        UsersAccess::RevokeRole { user: login, client_id, role, json } => {
            let u = user(store, &login).await?;
            if !store.revoke_role(&u.id, &client_id, &role).await? {
                anyhow::bail!("{} does not have the role {role} at {client_id}", u.username);
            }
            let event = AuditEvent::new("admin.role_revoked").user(&u.id).client(&client_id);
            store.audit(event.detail("role", role.as_str()), now()).await;
            print(
                json.json,
                json!({ "user": u.username, "client_id": client_id, "role": role, "changed": true }),
                || format!("{} no longer has the role {role} at {client_id}", u.username),
            );
        }
    }
    Ok(())
}

pub async fn roles(store: &Store, command: RolesCommand) -> anyhow::Result<()> {
    match command {
        RolesCommand::Add { client_id, role, json } => {
            check_name("role", &role)?;
            client(store, &client_id).await?;
            if !store.add_client_role(&client_id, &role).await? {
                anyhow::bail!("client {client_id} has a role {role} already");
            }
            let event = AuditEvent::new("admin.client_role_added").client(&client_id).detail("role", role.as_str());
            store.audit(event, now()).await;
            print(json.json, json!({ "client_id": client_id, "role": role }), || {
                format!("client {client_id} has the role {role}")
            });
        }
        RolesCommand::Remove { client_id, role, json } => {
            if !store.remove_client_role(&client_id, &role).await? {
                anyhow::bail!("client {client_id} has no role {role}");
            }
            let event = AuditEvent::new("admin.client_role_removed").client(&client_id).detail("role", role.as_str());
            store.audit(event, now()).await;
            print(json.json, json!({ "client_id": client_id, "removed": role }), || {
                format!("removed the role {role} of client {client_id} from it and every user")
            });
        }
        RolesCommand::List { client_id, json } => {
            client(store, &client_id).await?;
            let roles = store.client_roles(&client_id).await?;
            print(json.json, json!({ "client_id": client_id, "roles": roles }), || roles.join("\n"));
        }
    }
    Ok(())
}
