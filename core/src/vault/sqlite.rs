//! The embedded store: one SQLite file (compiled in, no setup). WAL
//! journal with `synchronous = FULL`: a committed token survives the
//! process being killed, and the machine losing power. Writers serialise
//! on SQLite's write lock (`BEGIN IMMEDIATE`), so several processes may
//! share the file.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::VaultError;
use super::audit::AuditRecord;
use super::store::{META_AUDIT_HEAD, ROW_COLUMNS, Row, SCHEMA, Store, StoreError, Tx, decode_head, encode_head};

/// A vault store in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

fn e(err: rusqlite::Error) -> StoreError {
    StoreError(err.to_string())
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the vault file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or opened, or is not a cardveil vault.
    pub fn open(path: &Path) -> Result<SqliteStore, VaultError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Create it owner-only before SQLite does; its -wal and -shm
            // files take the same mode.
            let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            match created {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(StoreError(format!("{}: {err}", path.display())).into()),
            }
        }
        let conn = Connection::open(path).map_err(|err| StoreError(format!("{}: {err}", path.display())))?;
        Self::init(conn)
    }

    /// A store in memory (tests, trials): gone when dropped.
    pub fn in_memory() -> Result<SqliteStore, VaultError> {
        Self::init(Connection::open_in_memory().map_err(e)?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, VaultError> {
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(e)?;
        // `journal_mode` answers with a row; in memory it stays "memory".
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(e)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(e)?;
        let mut store = SqliteStore { conn };
        let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        tx.execute_batch(SCHEMA).map_err(e)?;
        tx.execute(
            "INSERT INTO cardveil_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![META_AUDIT_HEAD, encode_head(0, &[0; 32]).as_slice()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(store)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        token: r.get(0)?,
        kek_version: r.get(1)?,
        wrapped_key: r.get(2)?,
        ciphertext: r.get(3)?,
        fingerprint: r.get(4)?,
        brand: r.get(5)?,
        last4: r.get(6)?,
        digits: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    let hash = |i: usize| -> rusqlite::Result<[u8; 32]> {
        let v: Vec<u8> = r.get(i)?;
        // A wrong length is tampering: it fails verification as zeros.
        Ok(v.try_into().unwrap_or([0; 32]))
    };
    Ok(AuditRecord {
        seq: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        actor: r.get(2)?,
        operation: r.get(3)?,
        token: r.get(4)?,
        outcome: r.get(5)?,
        prev_hash: hash(6)?,
        hash: hash(7)?,
    })
}

struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

impl SqliteTx<'_> {
    // Statements are prepared once per connection and cached.
    fn execute<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.0.prepare_cached(sql)?.execute(p)
    }

    fn query_row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.0.prepare_cached(sql)?.query_row(p, f)
    }
}

impl Tx for SqliteTx<'_> {
    fn lock_audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        decode_head(self.meta_get(META_AUDIT_HEAD)?)
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO cardveil_audit (seq, at, actor, operation, token, outcome, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.seq as i64,
                r.at,
                r.actor,
                r.operation,
                r.token,
                r.outcome,
                r.prev_hash.as_slice(),
                r.hash.as_slice()
            ],
        )
        .map_err(e)?;
        self.meta_put(META_AUDIT_HEAD, &encode_head(r.seq, &r.hash))
    }

    fn meta_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query_row("SELECT value FROM cardveil_meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(e)
    }

    fn meta_put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self
            .execute(
                "INSERT INTO cardveil_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(e)
    }

    fn insert(&mut self, w: &Row) -> Result<bool, StoreError> {
        let n = self
            .0
            .execute(
                &format!("INSERT INTO cardveil_tokens ({ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (token) DO NOTHING"),
                params![
                    w.token,
                    w.kek_version,
                    w.wrapped_key,
                    w.ciphertext,
                    w.fingerprint,
                    w.brand,
                    w.last4,
                    w.digits,
                    w.created_at,
                    w.expires_at
                ],
            )
            .map_err(e)?;
        Ok(n == 1)
    }

    fn get(&mut self, token: &str) -> Result<Option<Row>, StoreError> {
        self.query_row(&format!("SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE token = ?1"), [token], row)
            .optional()
            .map_err(e)
    }

    fn by_fingerprint(&mut self, fingerprint: &[u8], now: i64) -> Result<Option<Row>, StoreError> {
        self
            .query_row(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE fingerprint = ?1 AND expires_at > ?2 ORDER BY created_at DESC LIMIT 1"
                ),
                params![fingerprint, now],
                row,
            )
            .optional()
            .map_err(e)
    }

    fn delete(&mut self, token: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM cardveil_tokens WHERE token = ?1", [token]).map_err(e)? == 1)
    }

    fn purge(&mut self, now: i64) -> Result<u64, StoreError> {
        Ok(self.execute("DELETE FROM cardveil_tokens WHERE expires_at <= ?1", [now]).map_err(e)? as u64)
    }

    fn not_at_version(&mut self, version: u32, limit: u32) -> Result<Vec<Row>, StoreError> {
        let mut q = self
            .0
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM cardveil_tokens WHERE kek_version <> ?1 ORDER BY token LIMIT ?2"
            ))
            .map_err(e)?;
        q.query_map(params![version, limit], row).map_err(e)?.collect::<Result<_, _>>().map_err(e)
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
            "UPDATE cardveil_tokens SET kek_version = ?2, wrapped_key = ?3, fingerprint = ?4, \
             ciphertext = COALESCE(?5, ciphertext) WHERE token = ?1",
            params![token, version, wrapped_key, fingerprint, ciphertext],
        )
        .map(drop)
        .map_err(e)
    }
}

impl Store for SqliteStore {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), VaultError>) -> Result<(), VaultError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        body(&mut SqliteTx(&tx))?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    fn audit_records(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT seq, at, actor, operation, token, outcome, prev_hash, hash FROM cardveil_audit \
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(e)?;
        q.query_map(params![after as i64, limit], audit_row).map_err(e)?.collect::<Result<_, _>>().map_err(e)
    }

    fn audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let v = self
            .conn
            .query_row("SELECT value FROM cardveil_meta WHERE key = ?1", [META_AUDIT_HEAD], |r| r.get(0))
            .optional()
            .map_err(e)?;
        decode_head(v)
    }
}
