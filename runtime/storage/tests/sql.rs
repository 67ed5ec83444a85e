//! The SQL store against a real PostgreSQL server (Debian's, started by the acceptance
//! harness; one per test binary, stopped when the binary exits).

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adf_acceptance::postgres::PostgresServer;
use adf_storage::StorageError;
use adf_storage::sql::{Sql, SqlConfig};
use anyhow::{Context, Result, anyhow};

fn server() -> Result<&'static PostgresServer> {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| PostgresServer::start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("PostgreSQL did not start: {e}"))
}

/// The server's superuser, without TLS, with `pool_size` connections.
fn config(pool_size: usize) -> Result<SqlConfig> {
    let mut config = SqlConfig::from_url(&server()?.url())?;
    config.pool_size = pool_size;
    Ok(config)
}

fn connect(pool_size: usize) -> Result<Sql> {
    Ok(Sql::new(config(pool_size)?, None)?)
}

/// A new table `(id int8 primary key, name text)`; its name.
async fn table(sql: &Sql) -> Result<String> {
    let name = adf_acceptance::unique_name("t").replace('-', "_");
    sql.batch_execute(&format!("CREATE TABLE {name} (id int8 PRIMARY KEY, name text)")).await?;
    Ok(name)
}

async fn count(sql: &Sql, table: &str) -> Result<i64> {
    Ok(sql.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.try_get(0)?)
}

#[tokio::test]
async fn parameters_of_many_types_round_trip() -> Result<()> {
    let sql = connect(2)?;
    let t = adf_acceptance::unique_name("types").replace('-', "_");
    sql.batch_execute(&format!(
        "CREATE TABLE {t} (id int8 PRIMARY KEY, name text NOT NULL, active bool, data bytea, doc jsonb, \
         at timestamptz, note text, score float8, small int4)"
    ))
    .await?;
    let name = "naïve 'quoted' \"name\" ✓";
    let data: Vec<u8> = (0..=255).collect();
    let doc = serde_json::json!({"tags": ["a", "b"], "n": 3, "nested": {"ok": true}});
    let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    let note: Option<String> = None;
    let inserted = sql
        .execute(
            &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[&i64::MAX, &name, &true, &data, &doc, &at, &note, &2.5f64, &-7i32],
        )
        .await?;
    assert_eq!(inserted, 1);

    let row = sql.query_one(&format!("SELECT * FROM {t} WHERE id = $1"), &[&i64::MAX]).await?;
    assert_eq!(row.try_get::<_, i64>("id")?, i64::MAX);
    assert_eq!(row.try_get::<_, String>("name")?, name);
    assert!(row.try_get::<_, bool>("active")?);
    assert_eq!(row.try_get::<_, Vec<u8>>("data")?, data);
    assert_eq!(row.try_get::<_, serde_json::Value>("doc")?, doc);
    assert_eq!(row.try_get::<_, SystemTime>("at")?, at);
    assert_eq!(row.try_get::<_, Option<String>>("note")?, None);
    assert_eq!(row.try_get::<_, f64>("score")?, 2.5);
    assert_eq!(row.try_get::<_, i32>("small")?, -7);

    assert!(sql.query_opt(&format!("SELECT id FROM {t} WHERE id = $1"), &[&1i64]).await?.is_none());
    let rows = sql.query(&format!("SELECT id FROM {t} WHERE doc @> $1"), &[&serde_json::json!({"n": 3})]).await?;
    assert_eq!(rows.len(), 1, "jsonb parameters compare as jsonb");
    let updated = sql.execute(&format!("UPDATE {t} SET active = $1 WHERE id = $2"), &[&false, &i64::MAX]).await?;
    assert_eq!(updated, 1);
    Ok(())
}

#[tokio::test]
async fn a_parameter_is_data_never_sql() -> Result<()> {
    let sql = connect(2)?;
    let t = table(&sql).await?;
    sql.execute(&format!("INSERT INTO {t} VALUES (1, 'kept')"), &[]).await?;
    let attacks = [format!("x'); DROP TABLE {t}; --"), "' OR '1'='1".to_string(), "1; DELETE FROM pg_user".to_string()];
    for (id, attack) in (2i64..).zip(&attacks) {
        sql.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&id, attack]).await?;
        let back: String = sql.query_one(&format!("SELECT name FROM {t} WHERE id = $1"), &[&id]).await?.try_get(0)?;
        assert_eq!(&back, attack, "stored as written");
    }
    let matched = sql.query(&format!("SELECT id FROM {t} WHERE name = $1"), &[&"nothing' OR '1'='1"]).await?;
    assert!(matched.is_empty(), "an injected OR matched {} rows", matched.len());
    assert_eq!(count(&sql, &t).await?, 4, "the table is still there, with every row");
    Ok(())
}

#[tokio::test]
async fn a_committed_transaction_is_seen_and_a_rolled_back_one_is_not() -> Result<()> {
    let sql = connect(2)?;
    let t = table(&sql).await?;
    let mut tx = sql.begin().await?;
    tx.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&1i64, &"one"]).await?;
    tx.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&2i64, &"two"]).await?;
    assert_eq!(count(&sql, &t).await?, 0, "uncommitted rows are not seen from another connection");
    let seen: i64 = tx.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await?.try_get(0)?;
    assert_eq!(seen, 2, "the transaction sees its own rows");
    tx.commit().await?;
    assert_eq!(count(&sql, &t).await?, 2);

    let mut tx = sql.begin().await?;
    tx.execute(&format!("DELETE FROM {t}"), &[]).await?;
    tx.execute(&format!("INSERT INTO {t} VALUES (3, 'three')"), &[]).await?;
    tx.rollback().await?;
    assert_eq!(count(&sql, &t).await?, 2, "the rollback undid the delete and the insert");
    Ok(())
}

#[tokio::test]
async fn a_dropped_transaction_rolls_back_and_its_connection_is_reused() -> Result<()> {
    let sql = connect(1)?;
    let t = table(&sql).await?;
    let pid: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    {
        let mut tx = sql.begin().await?;
        tx.execute(&format!("INSERT INTO {t} VALUES (1, 'dropped')"), &[]).await?;
    }
    // One connection: had the drop not rolled back, this would run inside the open
    // transaction and see its row.
    assert_eq!(count(&sql, &t).await?, 0);
    let again: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    assert_eq!(again, pid, "the connection went back to the pool");

    let result: Result<()> = async {
        let mut tx = sql.begin().await?;
        tx.execute(&format!("INSERT INTO {t} VALUES (2, 'then an error')"), &[]).await?;
        tx.execute("SELECT * FROM no_such_table", &[]).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    assert!(result.is_err(), "the bad statement fails the block");
    assert_eq!(count(&sql, &t).await?, 0, "leaving by `?` rolled back");
    Ok(())
}

#[tokio::test]
async fn commit_after_a_failed_statement_rolls_back_and_says_so() -> Result<()> {
    let sql = connect(2)?;
    let t = table(&sql).await?;
    let mut tx = sql.begin().await?;
    tx.execute(&format!("INSERT INTO {t} VALUES (1, 'a')"), &[]).await?;
    let e = tx.execute(&format!("INSERT INTO {t} VALUES (1, 'b')"), &[]).await.expect_err("duplicate key");
    assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
    let e = tx.execute(&format!("INSERT INTO {t} VALUES (2, 'c')"), &[]).await.expect_err("aborted");
    assert!(matches!(e, StorageError::Invalid { what: "transaction", .. }), "{e}");
    let e = tx.commit().await.expect_err("commit of an aborted transaction");
    assert!(
        matches!(e, StorageError::Invalid { what: "transaction", .. }) && e.to_string().contains("rolled back"),
        "{e}"
    );
    assert_eq!(count(&sql, &t).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_unique_violation_is_precondition_failed() -> Result<()> {
    let sql = connect(1)?;
    let t = table(&sql).await?;
    sql.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&7i64, &"first"]).await?;
    let e = sql.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&7i64, &"second"]).await.expect_err("dup");
    let text = e.to_string();
    assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
    assert!(text.contains("duplicate key") && text.contains("23505") && text.contains("(id)=(7)"), "{text}");
    let kept: String = sql.query_one(&format!("SELECT name FROM {t} WHERE id = 7"), &[]).await?.try_get(0)?;
    assert_eq!(kept, "first");
    Ok(())
}

#[tokio::test]
async fn a_serialization_failure_is_precondition_failed() -> Result<()> {
    let sql = connect(2)?;
    let t = table(&sql).await?;
    sql.execute(&format!("INSERT INTO {t} VALUES (1, 'v0')"), &[]).await?;
    let (mut a, mut b) = (sql.begin().await?, sql.begin().await?);
    for tx in [&mut a, &mut b] {
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
        tx.query_one(&format!("SELECT name FROM {t} WHERE id = 1"), &[]).await?;
    }
    a.execute(&format!("UPDATE {t} SET name = 'a' WHERE id = 1"), &[]).await?;
    a.commit().await?;
    let e = b.execute(&format!("UPDATE {t} SET name = 'b' WHERE id = 1"), &[]).await.expect_err("conflict");
    assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
    assert!(e.to_string().contains("40001") && e.to_string().contains("retry"), "{e}");
    drop(b);
    let name: String = sql.query_one(&format!("SELECT name FROM {t} WHERE id = 1"), &[]).await?.try_get(0)?;
    assert_eq!(name, "a");
    Ok(())
}

#[tokio::test]
async fn bad_sql_bad_values_and_bad_reads_are_typed_errors() -> Result<()> {
    let sql = connect(1)?;
    let t = table(&sql).await?;
    let invalid = |e: StorageError, what: &str, says: &str| {
        assert!(matches!(&e, StorageError::Invalid { what: w, .. } if *w == what), "{what}: {e}");
        assert!(e.to_string().contains(says), "{e} does not say {says:?}");
    };
    invalid(sql.query("SELEC 1", &[]).await.expect_err("syntax"), "SQL", "42601");
    invalid(sql.query("SELECT * FROM no_such_table", &[]).await.expect_err("table"), "SQL", "42P01");
    invalid(
        sql.execute(&format!("INSERT INTO {t} VALUES (1, NULL), (NULL, 'x')"), &[]).await.expect_err("null"),
        "SQL value",
        "23502",
    );
    invalid(sql.query("SELECT 'abc'::int4", &[]).await.expect_err("cast"), "SQL value", "22P02");
    invalid(sql.query("SELECT $1::text", &[&"nul\0byte"]).await.expect_err("NUL"), "SQL value", "22021");
    invalid(sql.query("SELECT $1::int8", &[]).await.expect_err("count"), "SQL parameters", "expected 1 parameters");
    invalid(
        sql.query("SELECT $1::int8", &[&"text"]).await.expect_err("type"),
        "SQL parameters",
        "serializing parameter",
    );
    invalid(sql.query_one("SELECT 1 UNION ALL SELECT 2", &[]).await.expect_err("two rows"), "query", "got 2");

    let e = sql.query_one(&format!("SELECT * FROM {t}"), &[]).await.expect_err("no row");
    assert!(matches!(e, StorageError::NotFound(_)), "{e}");
    let row = sql.query_one("SELECT 'text'::text AS t", &[]).await?;
    let e: StorageError = row.try_get::<_, i64>("t").expect_err("text is not int8").into();
    assert!(matches!(e, StorageError::Decode { what: "SQL column", .. }), "{e}");
    let e: StorageError = row.try_get::<_, String>("missing").expect_err("no such column").into();
    assert!(matches!(e, StorageError::Invalid { what: "SQL column", .. }), "{e}");
    assert_eq!(sql.query_one("SELECT 1::int4", &[]).await?.try_get::<_, i32>(0)?, 1, "the connection still works");
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_queries_share_four_connections() -> Result<()> {
    let sql = connect(4)?;
    let tasks: Vec<_> = (0..20i64)
        .map(|n| {
            let sql = sql.clone();
            tokio::spawn(async move {
                let row = sql.query_one("SELECT pg_backend_pid(), $1::int8 FROM pg_sleep(0.1)", &[&n]).await?;
                anyhow::Ok((row.try_get::<_, i32>(0)?, row.try_get::<_, i64>(1)?, n))
            })
        })
        .collect();
    let mut pids = BTreeSet::new();
    for task in tasks {
        let (pid, echoed, n) = task.await??;
        assert_eq!(echoed, n, "each query got its own parameter back");
        pids.insert(pid);
    }
    assert!((2..=4).contains(&pids.len()), "queries ran on {} connections: {pids:?}", pids.len());
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_access_denied_and_says_so() -> Result<()> {
    let mut config = config(1)?;
    config.password = Some("not-the-password".into());
    let sql = Sql::new(config, None)?;
    let e = sql.query("SELECT 1", &[]).await.expect_err("wrong password");
    let text = e.to_string();
    assert!(matches!(e, StorageError::AccessDenied(_)), "{e}");
    assert!(text.contains("password authentication failed for user \"adf\"") && text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("not-the-password") && !format!("{sql:?}").contains("not-the-password"), "{text}");
    let log = server()?.log_text();
    assert!(log.contains("password authentication failed for user \"adf\""), "the server refused it too: {log}");
    Ok(())
}

#[tokio::test]
async fn a_killed_connection_is_replaced_by_the_pool() -> Result<()> {
    let sql = connect(1)?;
    let admin = connect(1)?;
    let first: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    terminate(&admin, first).await?;
    let second: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    assert_ne!(second, first, "a new connection replaced the killed one");

    let mut tx = sql.begin().await?;
    terminate(&admin, second).await?;
    let e = tx.query("SELECT 1", &[]).await.expect_err("its connection is gone");
    assert!(matches!(e, StorageError::Backend(_)), "{e}");
    drop(tx);
    let third: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    assert!(third != second && third != first, "{first} {second} {third}");
    Ok(())
}

/// Kills backend `pid` from `admin`'s session and waits until it is gone.
async fn terminate(admin: &Sql, pid: i32) -> Result<()> {
    let killed: bool = admin.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await?.try_get(0)?;
    assert!(killed, "pg_terminate_backend({pid})");
    let started = Instant::now();
    loop {
        let left: i64 =
            admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).await?.try_get(0)?;
        if left == 0 {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(anyhow!("backend {pid} still there 10 s after pg_terminate_backend"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tls_verifies_the_server_and_carries_the_session() -> Result<()> {
    let server = server()?;
    let mut config = config(1)?;
    config.tls = true;
    config.tls_ca_file = Some(server.ca_file());
    let sql = Sql::new(config.clone(), None)?;
    let on_tls: bool = sql
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await?
        .try_get(0)
        .context("pg_stat_ssl")?;
    assert!(on_tls, "the session runs over TLS");

    config.tls_ca_file = None;
    let e = Sql::new(config, None)?.query("SELECT 1", &[]).await.expect_err("the test CA is not trusted");
    assert!(matches!(e, StorageError::Backend(_)) && e.to_string().contains("UnknownIssuer"), "{e}");
    Ok(())
}
