//! Groups of users and per-client roles, as the operator defines them, and the required-group
//! rule of a client. Membership rows go with the user (cascade); a group some client requires
//! cannot be removed.

use super::pg_direct::pooled;
use super::{Result, Store};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct GroupRow {
    pub name: String,
    pub created_at: i64,
    pub members: i64,
}

/// What removing a group found.
pub enum GroupRemoval {
    Removed,
    Missing,
    /// These clients require it.
    Required(Vec<String>),
}

impl Store {
    /// Defines a group; false if it exists.
    pub async fn insert_group(&self, name: &str, now: i64) -> Result<bool> {
        let r =
            sqlx::query("INSERT INTO access_groups (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupRow>> {
        sqlx::query_as(
            "SELECT g.name AS name, g.created_at AS created_at,
                    (SELECT COUNT(*) FROM group_members m WHERE m.group_name = g.name) AS members
             FROM access_groups g ORDER BY g.name",
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn group_exists(&self, name: &str) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as("SELECT name FROM access_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Removes a group and its memberships, unless a client requires it.
    pub async fn remove_group(&self, name: &str) -> Result<GroupRemoval> {
        let mut tx = self.begin().await?;
        let requiring: Vec<(String,)> =
            sqlx::query_as("SELECT client_id FROM client_required_groups WHERE group_name = $1 ORDER BY client_id")
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        if !requiring.is_empty() {
            return Ok(GroupRemoval::Required(requiring.into_iter().map(|(c,)| c).collect()));
        }
        sqlx::query("DELETE FROM group_members WHERE group_name = $1").bind(name).execute(&mut *tx).await?;
        let r = sqlx::query("DELETE FROM access_groups WHERE name = $1").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(if r.rows_affected() == 1 { GroupRemoval::Removed } else { GroupRemoval::Missing })
    }

    /// Adds a user to an existing group; false if they were in it already.
    pub async fn add_to_group(&self, user_id: &str, group: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO group_members (group_name, user_id) VALUES ($1, $2) ON CONFLICT (user_id, group_name) DO NOTHING",
        )
        .bind(group)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn remove_from_group(&self, user_id: &str, group: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM group_members WHERE group_name = $1 AND user_id = $2")
            .bind(group)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The names of a user's groups, sorted.
    pub async fn user_groups(&self, user_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(g,)| g).collect())
    }

    /// Defines a role of a client; false if it exists.
    pub async fn add_client_role(&self, client_id: &str, role: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO client_roles (client_id, role) VALUES ($1, $2) ON CONFLICT (client_id, role) DO NOTHING",
        )
        .bind(client_id)
        .bind(role)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes a role of a client and every grant of it to a user.
    pub async fn remove_client_role(&self, client_id: &str, role: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM role_members WHERE client_id = $1 AND role = $2")
            .bind(client_id)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM client_roles WHERE client_id = $1 AND role = $2")
            .bind(client_id)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn client_roles(&self, client_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT role FROM client_roles WHERE client_id = $1 ORDER BY role")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// Gives a user a role the client defines; false if they had it.
    pub async fn grant_role(&self, user_id: &str, client_id: &str, role: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO role_members (user_id, client_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, client_id, role) DO NOTHING",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(role)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn revoke_role(&self, user_id: &str, client_id: &str, role: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM role_members WHERE user_id = $1 AND client_id = $2 AND role = $3")
            .bind(user_id)
            .bind(client_id)
            .bind(role)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A user's roles at one client, sorted.
    pub async fn user_roles(&self, user_id: &str, client_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT role FROM role_members WHERE user_id = $1 AND client_id = $2 ORDER BY role")
                .bind(user_id)
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// Replaces the groups a client requires (none: everyone may use it).
    pub async fn set_required_groups(&self, client_id: &str, groups: &[String]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM client_required_groups WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        for g in groups {
            sqlx::query("INSERT INTO client_required_groups (client_id, group_name) VALUES ($1, $2)")
                .bind(client_id)
                .bind(g)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn required_groups(&self, client_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT group_name FROM client_required_groups WHERE client_id = $1 ORDER BY group_name")
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(g,)| g).collect())
    }

    /// The required-group rule, in one indexed query: the client requires no group, or the
    /// user is in one of those it requires.
    pub async fn may_use_client(&self, user_id: &str, client_id: &str) -> Result<bool> {
        const SQL: &str = concat!("SELECT ", may_use_client!("$1", "$2"));
        let row: Option<(i64,)> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, SQL, &[&client_id, &user_id]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(client_id).bind(user_id).fetch_optional(e))?,
        };
        Ok(row.is_some_and(|(may,)| may == 1))
    }
}
