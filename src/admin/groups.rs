//! Groups of users (released as the `groups` claim, required by clients): add, list, remove.
//! Memberships are changed through `users`.

use super::{AdminError, Ops};
use crate::store::{AuditEvent, GroupRemoval};
use serde::Serialize;
use utoipa::ToSchema;

/// A group and how many members it has.
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    pub name: String,
    pub created_at: i64,
    pub members: i64,
}

pub async fn add(ops: &Ops<'_>, name: &str) -> Result<(), AdminError> {
    super::check_name("group", name)?;
    if !ops.store.insert_group(name, ops.now).await? {
        return Err(AdminError::Conflict(format!("a group named {name} exists already")));
    }
    ops.audit(AuditEvent::new("admin.group_added").detail("group", name)).await;
    Ok(())
}

pub async fn list(ops: &Ops<'_>) -> Result<Vec<Group>, AdminError> {
    let rows = ops.store.list_groups().await?;
    Ok(rows.into_iter().map(|g| Group { name: g.name, created_at: g.created_at, members: g.members }).collect())
}

/// Removes a group and its memberships; refused while a client requires it.
pub async fn remove(ops: &Ops<'_>, name: &str) -> Result<(), AdminError> {
    match ops.store.remove_group(name).await? {
        GroupRemoval::Removed => {
            ops.audit(AuditEvent::new("admin.group_removed").detail("group", name)).await;
            Ok(())
        }
        GroupRemoval::Missing => Err(AdminError::NotFound(format!("no group {name}"))),
        GroupRemoval::Required(clients) => Err(AdminError::Conflict(format!(
            "group {name} is required by client(s) {}; change them first",
            clients.join(", ")
        ))),
    }
}
