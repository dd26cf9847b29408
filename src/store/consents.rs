//! Remembered consent: which scopes a user has granted a client.

use super::pg_direct::pooled;
use super::{Result, Store};
use crate::domain::{join_scope, parse_scope};

impl Store {
    pub async fn consented_scopes(&self, user_id: &str, client_id: &str) -> Result<Vec<String>> {
        const SQL: &str = "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2";
        let row: Option<(String,)> = match &self.direct {
            Some(d) => d.read(|c| super::direct::query_opt(c, SQL, &[&user_id, &client_id]))?,
            None => pooled!(self, |e| sqlx::query_as(SQL).bind(user_id).bind(client_id).fetch_optional(e))?,
        };
        Ok(row.map(|(s,)| parse_scope(&s)).unwrap_or_default())
    }

    /// Adds `scopes` to what the user has granted the client.
    pub async fn grant_consent(&self, user_id: &str, client_id: &str, scopes: &[String], now: i64) -> Result<()> {
        let mut all = self.consented_scopes(user_id, client_id).await?;
        all.extend(scopes.iter().cloned());
        let all = parse_scope(&join_scope(&all));
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(join_scope(&all))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A remembered consent, as the user's data export lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConsentRow {
    pub client_id: String,
    pub scopes: String,
    pub granted_at: i64,
}

impl Store {
    /// Every client the user has granted scopes to.
    pub async fn consents_of(&self, user_id: &str) -> Result<Vec<ConsentRow>> {
        sqlx::query_as("SELECT client_id, scopes, granted_at FROM consents WHERE user_id = $1 ORDER BY granted_at")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
    }
}
