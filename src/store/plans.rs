//! For tests: whether statements find their rows through indexes, by the plans SQLite makes
//! for them on a database the migrations built.

use sqlx::Connection;

/// Asserts that no statement of `statements` reads a whole table (a `SCAN` step in its plan;
/// `$1` and `$2` bound to numbers, the rest null). One that did would hold SQLite's write lock
/// for as long as the table takes to read, longer as it grows.
pub async fn assert_every_statement_searches_an_index(statements: &[&str]) {
    let dir = std::env::temp_dir().join(format!("latchkey-plans-{}", crate::crypto::random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("plan.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    super::SQLITE_MIGRATIONS.run(&mut conn).await.unwrap();
    for sql in statements {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind(1_i64)
                .bind(2_i64)
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
        assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{sql}\nreads a whole table: {steps:?}");
    }
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
}
