//! The shared store: PostgreSQL, for deployments where many softphones and
//! recorders use one vault. Same schema as SQLite (`BLOB` is `BYTEA`).
//! Writers serialise on the audit head's row (`SELECT … FOR UPDATE`), so
//! the chain stays linear across processes and hosts.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};

use super::VaultError;
use super::audit::AuditRecord;
use super::store::{META_AUDIT_HEAD, ROW_COLUMNS, Row, SCHEMA, Store, StoreError, Tx, decode_head, encode_head};

/// A vault store in a PostgreSQL database.
pub struct PostgresStore {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

fn e(err: postgres::Error) -> StoreError {
    // `as_db_error` carries the server's message; the connection string
    // (and its password) is never part of it.
    StoreError(match err.as_db_error() {
        Some(db) => format!("postgres: {}", db.message()),
        None => format!("postgres: {err}"),
    })
}

/// An arbitrary constant: the advisory lock that serialises schema setup.
const SETUP_LOCK: i64 = 0x6361_7264_7665_696c;

impl PostgresStore {
    /// Connects (`host=… user=… dbname=…` or a `postgresql://` URL; no TLS:
    /// use loopback or a Unix socket, or a TLS-terminating proxy) and
    /// creates the schema if it is missing.
    pub fn connect(params: &str) -> Result<PostgresStore, VaultError> {
        let mut client = Client::connect(params, NoTls).map_err(e)?;
        let mut tx = client.transaction().map_err(e)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK]).map_err(e)?;
        tx.batch_execute(&SCHEMA.replace("BLOB", "BYTEA")).map_err(e)?;
        tx.execute(
            "INSERT INTO cardveil_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&META_AUDIT_HEAD, &encode_head(0, &[0; 32]).as_slice()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(PostgresStore { client, statements: HashMap::new() })
    }
}

fn row(r: &postgres::Row) -> Result<Row, StoreError> {
    let g = |err: postgres::Error| e(err);
    Ok(Row {
        token: r.try_get(0).map_err(g)?,
        kek_version: r.try_get::<_, i32>(1).map_err(g)? as u32,
        wrapped_key: r.try_get(2).map_err(g)?,
        ciphertext: r.try_get(3).map_err(g)?,
        fingerprint: r.try_get(4).map_err(g)?,
        brand: r.try_get(5).map_err(g)?,
        last4: r.try_get(6).map_err(g)?,
        digits: r.try_get::<_, i32>(7).map_err(g)?.clamp(0, 255) as u8,
        created_at: r.try_get(8).map_err(g)?,
        expires_at: r.try_get(9).map_err(g)?,
    })
}

fn audit_row(r: &postgres::Row) -> Result<AuditRecord, StoreError> {
    let hash = |i: usize| -> Result<[u8; 32], StoreError> {
        let v: Vec<u8> = r.try_get(i).map_err(e)?;
        Ok(v.try_into().unwrap_or([0; 32]))
    };
    Ok(AuditRecord {
        seq: r.try_get::<_, i64>(0).map_err(e)? as u64,
        at: r.try_get(1).map_err(e)?,
        actor: r.try_get(2).map_err(e)?,
        operation: r.try_get(3).map_err(e)?,
        token: r.try_get(4).map_err(e)?,
        outcome: r.try_get(5).map_err(e)?,
        prev_hash: hash(6)?,
        hash: hash(7)?,
    })
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl PgTx<'_, '_> {
    /// The statement for `sql`, prepared once per connection (a round trip
    /// saved on every later use).
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn execute(&mut self, sql: &str, p: Params<'_>) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, p)
    }

    fn query_opt(&mut self, sql: &str, p: Params<'_>) -> Result<Option<postgres::Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, p)
    }

    fn query(&mut self, sql: &str, p: Params<'_>) -> Result<Vec<postgres::Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, p)
    }
}

impl Tx for PgTx<'_, '_> {
    fn lock_audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let r = self
            .query_opt("SELECT value FROM cardveil_meta WHERE key = $1 FOR UPDATE", &[&META_AUDIT_HEAD])
            .map_err(e)?;
        decode_head(r.map(|r| r.try_get(0)).transpose().map_err(e)?)
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<(), StoreError> {
        // The record and the new head in one statement: one round trip.
        let head = encode_head(r.seq, &r.hash);
        self.execute(
            "WITH record AS (INSERT INTO cardveil_audit (seq, at, actor, operation, token, outcome, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)) \
             UPDATE cardveil_meta SET value = $9 WHERE key = $10",
            &[
                &(r.seq as i64),
                &r.at,
                &r.actor,
                &r.operation,
                &r.token,
                &r.outcome,
                &r.prev_hash.as_slice(),
                &r.hash.as_slice(),
                &head.as_slice(),
                &META_AUDIT_HEAD,
            ],
        )
        .map_err(e)
        .and_then(|n| if n == 1 { Ok(()) } else { Err(StoreError("audit head row is missing".into())) })
    }

    fn meta_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.query_opt("SELECT value FROM cardveil_meta WHERE key = $1", &[&key]).map_err(e)?;
        r.map(|r| r.try_get(0)).transpose().map_err(e)
    }

    fn meta_put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self
            .execute(
                "INSERT INTO cardveil_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map(drop)
            .map_err(e)
    }

    fn insert(&mut self, w: &Row) -> Result<bool, StoreError> {
        let n = self
            .execute(
                &format!("INSERT INTO cardveil_tokens ({ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (token) DO NOTHING"),
                &[
                    &w.token,
                    &(w.kek_version as i32),
                    &w.wrapped_key,
                    &w.ciphertext,
                    &w.fingerprint,
                    &w.brand,
                    &w.last4,
                    &i32::from(w.digits),
                    &w.created_at,
                    &w.expires_at,
                ],
            )
            .map_err(e)?;
        Ok(n == 1)
    }

    fn get(&mut self, token: &str) -> Result<Option<Row>, StoreError> {
        let r = self
            .query_opt(&format!("SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE token = $1"), &[&token])
            .map_err(e)?;
        r.as_ref().map(row).transpose()
    }

    fn by_fingerprint(&mut self, fingerprint: &[u8], now: i64) -> Result<Option<Row>, StoreError> {
        let r = self
            .query_opt(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE fingerprint = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 1"
                ),
                &[&fingerprint, &now],
            )
            .map_err(e)?;
        r.as_ref().map(row).transpose()
    }

    fn delete(&mut self, token: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM cardveil_tokens WHERE token = $1", &[&token]).map_err(e)? == 1)
    }

    fn purge(&mut self, now: i64) -> Result<u64, StoreError> {
        self.execute("DELETE FROM cardveil_tokens WHERE expires_at <= $1", &[&now]).map_err(e)
    }

    fn not_at_version(&mut self, version: u32, limit: u32) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE kek_version <> $1 ORDER BY token LIMIT $2"),
                &[&(version as i32), &i64::from(limit)],
            )
            .map_err(e)?;
        rows.iter().map(row).collect()
    }

    fn rewrap(
        &mut self,
        token: &str,
        version: u32,
        wrapped_key: &[u8],
        fingerprint: Option<&[u8]>,
        ciphertext: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE cardveil_tokens SET kek_version = $2, wrapped_key = $3, fingerprint = $4, \
             ciphertext = COALESCE($5, ciphertext) WHERE token = $1",
            &[&token, &(version as i32), &wrapped_key, &fingerprint, &ciphertext],
        )
        .map(drop)
        .map_err(e)
    }
}

impl Store for PostgresStore {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), VaultError>) -> Result<(), VaultError> {
        let mut tx = self.client.transaction().map_err(e)?;
        body(&mut PgTx { tx: &mut tx, statements: &mut self.statements })?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    fn audit_records(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT seq, at, actor, operation, token, outcome, prev_hash, hash FROM cardveil_audit \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&(after as i64), &i64::from(limit)],
            )
            .map_err(e)?;
        rows.iter().map(audit_row).collect()
    }

    fn audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let r =
            self.client.query_opt("SELECT value FROM cardveil_meta WHERE key = $1", &[&META_AUDIT_HEAD]).map_err(e)?;
        decode_head(r.map(|r| r.try_get(0)).transpose().map_err(e)?)
    }
}
