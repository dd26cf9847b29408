//! User accounts as the operator manages them: add, list, show, set a password, disable,
//! enable, remove, reset second factors, and a user's groups and roles. A user is named by
//! username, email or id.

use super::{AdminError, Ops};
use crate::crypto::random_id;
use crate::domain::password_policy::{self, Refusal};
use crate::domain::user::parse_claim;
use crate::domain::{User, user::Status};
use crate::store::{AuditEvent, SignOut};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An account to create. Without a password it signs in only by the other ways the operator
/// allows (an upstream account, a sign-in link).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    /// Checked against the password policy.
    pub password: Option<String>,
    /// Standard claims (`name`, `given_name`, `locale`, …; `address` as an object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser").field("username", &self.username).field("email", &self.email).finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
    pub username: String,
}

/// An account as the operator sees it (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    #[schema(value_type = Object)]
    pub claims: Map<String, Value>,
    pub disabled: bool,
    /// `active`, or `pending` until a signed-up account confirms its email.
    #[schema(value_type = String)]
    pub status: Status,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its groups (shown for one user, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

impl UserView {
    fn of(u: User, groups: Option<Vec<String>>) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            claims: u.claims,
            disabled: u.disabled,
            status: u.status,
            created_at: u.created_at,
            updated_at: u.updated_at,
            groups,
        }
    }
}

/// A user's account after a change of state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub id: String,
    pub username: String,
    pub disabled: bool,
}

/// Second factors removed by a reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorsReset {
    pub id: String,
    pub username: String,
    pub factors_removed: u64,
}

/// Whether a membership or role changed (false: it was so already).
#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub changed: bool,
}

pub async fn add(ops: &Ops<'_>, new: NewUser) -> Result<Created, AdminError> {
    let NewUser { username, email, password, claims } = new;
    if username.trim().is_empty() || username.contains(char::is_whitespace) {
        return Err(AdminError::invalid("the username must be non-empty and without spaces"));
    }
    if !email.contains('@') {
        return Err(AdminError::invalid("the email must be an email address"));
    }
    let mut map = Map::new();
    for (name, value) in claims {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let (k, v) = parse_claim(&format!("{name}={text}")).map_err(AdminError::Invalid)?;
        map.insert(k, v);
    }
    let password_hash = match password {
        Some(p) => {
            password_policy::check(&ops.settings.password, &p, &[&username, &email]).map_err(refused)?;
            Some(ops.passwords.hash(p).await?)
        }
        None => None,
    };
    let user = User {
        id: random_id(),
        username,
        email,
        password_hash,
        claims: map,
        disabled: false,
        status: Default::default(),
        created_at: ops.now,
        updated_at: ops.now,
    };
    match ops.store.login_taken(&user.username, &user.email).await? {
        (true, _) => {
            return Err(AdminError::Conflict(format!("a user named {} exists already (ignoring case)", user.username)));
        }
        (_, true) => {
            return Err(AdminError::Conflict(format!("another user has the email {} (ignoring case)", user.email)));
        }
        _ => {}
    }
    if !ops.store.create_user(&user).await? {
        return Err(AdminError::Conflict("a user with this username or email exists already (ignoring case)".into()));
    }
    ops.audit(AuditEvent::new("admin.user_added").user(&user.id)).await;
    Ok(Created { id: user.id, username: user.username })
}

fn refused(refusal: Refusal) -> AdminError {
    AdminError::Invalid(format!("password refused: {refusal}"))
}

pub async fn list(ops: &Ops<'_>) -> Result<Vec<UserView>, AdminError> {
    Ok(ops.store.list_users().await?.into_iter().map(|u| UserView::of(u, None)).collect())
}

pub async fn show(ops: &Ops<'_>, login: &str) -> Result<UserView, AdminError> {
    let user = ops.user(login).await?;
    let groups = ops.store.user_groups(&user.id).await?;
    Ok(UserView::of(user, Some(groups)))
}

/// Sets a user's password (policy and history checked); ends their sessions and revokes their
/// grants, refresh tokens included, in the same transaction.
pub async fn set_password(ops: &Ops<'_>, login: &str, password: String) -> Result<Created, AdminError> {
    let user = ops.user(login).await?;
    let policy = &ops.settings.password;
    password_policy::check(policy, &password, &[&user.username, &user.email]).map_err(refused)?;
    if crate::account::new_password::reused(ops.passwords, ops.store, policy.history, &user, &password).await? {
        return Err(refused(Refusal::Reused(policy.history)));
    }
    let hash = ops.passwords.hash(password).await?;
    ops.store.set_password(&user.id, &hash, policy.history, SignOut::Everywhere, ops.now).await?;
    ops.audit(AuditEvent::new("admin.password_set").user(&user.id)).await;
    Ok(Created { id: user.id, username: user.username })
}

/// Disables a user: ends their sessions and revokes their grants.
pub async fn disable(ops: &Ops<'_>, login: &str) -> Result<Changed, AdminError> {
    let user = ops.user(login).await?;
    ops.store.disable_user(&user.id, ops.now).await?;
    ops.audit(AuditEvent::new("admin.user_disabled").user(&user.id)).await;
    Ok(Changed { id: user.id, username: user.username, disabled: true })
}

pub async fn enable(ops: &Ops<'_>, login: &str) -> Result<Changed, AdminError> {
    let user = ops.user(login).await?;
    ops.store.enable_user(&user.id, ops.now).await?;
    ops.audit(AuditEvent::new("admin.user_enabled").user(&user.id)).await;
    Ok(Changed { id: user.id, username: user.username, disabled: false })
}

/// Removes a user and their credentials, sessions, grants and consents.
pub async fn remove(ops: &Ops<'_>, login: &str) -> Result<Created, AdminError> {
    let user = ops.user(login).await?;
    ops.store.remove_user(&user.id).await?;
    ops.audit(AuditEvent::new("admin.user_removed").user(&user.id)).await;
    Ok(Created { id: user.id, username: user.username })
}

/// For a user locked out of their second factor: removes every second factor and recovery code,
/// ends their sessions and revokes their grants.
pub async fn reset_factors(ops: &Ops<'_>, login: &str) -> Result<FactorsReset, AdminError> {
    let user = ops.user(login).await?;
    let removed = ops.store.reset_second_factors(&user.id, ops.now).await?;
    ops.audit(AuditEvent::new("admin.factors_reset").user(&user.id).detail("removed", removed.to_string())).await;
    Ok(FactorsReset { id: user.id, username: user.username, factors_removed: removed })
}

pub async fn add_to_group(ops: &Ops<'_>, login: &str, group: &str) -> Result<Access, AdminError> {
    let u = ops.user(login).await?;
    if !ops.store.group_exists(group).await? {
        return Err(AdminError::NotFound(format!("no group {group} (add it first)")));
    }
    let added = ops.store.add_to_group(&u.id, group).await?;
    if added {
        ops.audit(AuditEvent::new("admin.group_member_added").user(&u.id).detail("group", group)).await;
    }
    Ok(Access { user: u.username, group: Some(group.to_owned()), client_id: None, role: None, changed: added })
}

pub async fn remove_from_group(ops: &Ops<'_>, login: &str, group: &str) -> Result<Access, AdminError> {
    let u = ops.user(login).await?;
    if !ops.store.remove_from_group(&u.id, group).await? {
        return Err(AdminError::NotFound(format!("{} is not in a group {group}", u.username)));
    }
    ops.audit(AuditEvent::new("admin.group_member_removed").user(&u.id).detail("group", group)).await;
    Ok(Access { user: u.username, group: Some(group.to_owned()), client_id: None, role: None, changed: true })
}

/// Gives a user one of a client's roles.
pub async fn grant_role(ops: &Ops<'_>, login: &str, client_id: &str, role: &str) -> Result<Access, AdminError> {
    let u = ops.user(login).await?;
    ops.client(client_id).await?;
    if !ops.store.client_roles(client_id).await?.iter().any(|r| r == role) {
        return Err(AdminError::NotFound(format!("client {client_id} has no role {role} (add the role first)")));
    }
    let granted = ops.store.grant_role(&u.id, client_id, role).await?;
    if granted {
        ops.audit(AuditEvent::new("admin.role_granted").user(&u.id).client(client_id).detail("role", role)).await;
    }
    let (client_id, role) = (Some(client_id.to_owned()), Some(role.to_owned()));
    Ok(Access { user: u.username, group: None, client_id, role, changed: granted })
}

pub async fn revoke_role(ops: &Ops<'_>, login: &str, client_id: &str, role: &str) -> Result<Access, AdminError> {
    let u = ops.user(login).await?;
    if !ops.store.revoke_role(&u.id, client_id, role).await? {
        return Err(AdminError::NotFound(format!("{} does not have the role {role} at {client_id}", u.username)));
    }
    ops.audit(AuditEvent::new("admin.role_revoked").user(&u.id).client(client_id).detail("role", role)).await;
    let (client_id, role) = (Some(client_id.to_owned()), Some(role.to_owned()));
    Ok(Access { user: u.username, group: None, client_id, role, changed: true })
}
