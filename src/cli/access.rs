//! Groups and per-client roles: `latchkey groups add|list|remove`, `latchkey users
//! add-to-group|remove-from-group|grant-role|revoke-role`, `latchkey clients roles
//! add|remove|list`: the shared operations of `admin::{groups, users, clients}`.

use super::{Json, print};
use crate::admin::{self, Ops};
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

pub async fn groups(ops: &Ops<'_>, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Add { name, json } => {
            admin::groups::add(ops, &name).await?;
            print(json.json, json!({ "group": name }), || format!("added group {name}"));
        }
        GroupsCommand::List { json } => {
            let list = admin::groups::list(ops).await?;
            print(json.json, json!(list), || {
                list.iter().map(|g| format!("{}  {} member(s)", g.name, g.members)).collect::<Vec<_>>().join("\n")
            });
        }
        GroupsCommand::Remove { name, json } => {
            admin::groups::remove(ops, &name).await?;
            print(json.json, json!({ "removed": name }), || format!("removed group {name}"));
        }
    }
    Ok(())
}

pub async fn users(ops: &Ops<'_>, command: UsersAccess) -> anyhow::Result<()> {
    use admin::users;
    let (access, line) = match command {
        UsersAccess::AddToGroup { user, group, json } => {
            let a = users::add_to_group(ops, &user, &group).await?;
            let line = match a.changed {
                true => format!("{} is now in {group}", a.user),
                false => format!("{} was already in {group}", a.user),
            };
            (a, (json, line))
        }
        UsersAccess::RemoveFromGroup { user, group, json } => {
            let a = users::remove_from_group(ops, &user, &group).await?;
            let line = format!("{} is no longer in {group}", a.user);
            (a, (json, line))
        }
        UsersAccess::GrantRole { user, client_id, role, json } => {
            let a = users::grant_role(ops, &user, &client_id, &role).await?;
            let line = format!("{} has the role {role} at {client_id}", a.user);
            (a, (json, line))
        }
        UsersAccess::RevokeRole { user, client_id, role, json } => {
            let a = users::revoke_role(ops, &user, &client_id, &role).await?;
            let line = format!("{} no longer has the role {role} at {client_id}", a.user);
            (a, (json, line))
        }
    };
    let (json, line) = line;
    print(json.json, serde_json::to_value(&access)?, || line);
    Ok(())
}

pub async fn roles(ops: &Ops<'_>, command: RolesCommand) -> anyhow::Result<()> {
    use admin::clients;
    match command {
        RolesCommand::Add { client_id, role, json } => {
            clients::add_role(ops, &client_id, &role).await?;
            print(json.json, json!({ "client_id": client_id, "role": role }), || {
                format!("client {client_id} has the role {role}")
            });
        }
        RolesCommand::Remove { client_id, role, json } => {
            clients::remove_role(ops, &client_id, &role).await?;
            print(json.json, json!({ "client_id": client_id, "removed": role }), || {
                format!("removed the role {role} of client {client_id} from it and every user")
            });
        }
        RolesCommand::List { client_id, json } => {
            let roles = clients::roles(ops, &client_id).await?;
            print(json.json, serde_json::to_value(&roles)?, || roles.roles.join("\n"));
        }
    }
    Ok(())
}
