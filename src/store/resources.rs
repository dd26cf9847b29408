//! Registered resource servers (RFC 8707), looked up by their indicator.

use super::{Result, Store, json_list, parse_list};
use crate::domain::resource::Resource;

impl Store {
    /// Registers a resource; false when one with that URI exists.
    pub async fn insert_resource(&self, r: &Resource) -> Result<bool> {
        if self.resource(&r.uri).await?.is_some() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO resources (uri, scopes, created_at) VALUES ($1, $2, $3)")
            .bind(&r.uri)
            .bind(json_list(&r.scopes))
            .bind(r.created_at)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    pub async fn resource(&self, uri: &str) -> Result<Option<Resource>> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT uri, scopes, created_at FROM resources WHERE uri = $1")
                .bind(uri)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(uri, scopes, created_at)| Resource { uri, scopes: parse_list(&scopes), created_at }))
    }

    pub async fn list_resources(&self) -> Result<Vec<Resource>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT uri, scopes, created_at FROM resources ORDER BY uri").fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(uri, scopes, created_at)| Resource { uri, scopes: parse_list(&scopes), created_at })
            .collect())
    }

    /// Removes a resource; tokens already issued for it live out their lifetime.
    pub async fn remove_resource(&self, uri: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM resources WHERE uri = $1").bind(uri).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}
