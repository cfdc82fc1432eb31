//! What a vault store does: rows in, rows out, inside one transaction per
//! vault operation. The crypto, tokens, TTLs and the audit chain live in
//! [`StoreVault`](super::StoreVault), once for every store; a store only
//! speaks SQL. The schema is the same for SQLite and PostgreSQL ([`SCHEMA`]).

use super::VaultError;
use super::audit::AuditRecord;

/// A database error, as the database put it. Stores never bind a PAN in
/// clear, so no message can carry one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// One token record as stored: no card data in clear. Its fields are the
/// crate's own (the stores are [`SqliteStore`](super::SqliteStore) and
/// [`PostgresStore`](super::PostgresStore)); a vault hands out
/// [`Metadata`](super::Metadata), never rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The token (primary key).
    pub(crate) token: String,
    /// The KEK version that wrapped the data key.
    pub(crate) kek_version: u32,
    /// Nonce ‖ wrapped data key ‖ tag.
    pub(crate) wrapped_key: Vec<u8>,
    /// Nonce ‖ sealed PAN ‖ tag.
    pub(crate) ciphertext: Vec<u8>,
    /// Keyed HMAC of the PAN, when "same card, same token" is on.
    pub(crate) fingerprint: Option<Vec<u8>>,
    /// Brand name (`visa`, …), if known.
    pub(crate) brand: Option<String>,
    /// The last four digits (ASCII).
    pub(crate) last4: String,
    /// PAN length.
    pub(crate) digits: u8,
    /// Unix seconds.
    pub(crate) created_at: i64,
    /// Unix seconds; the record is gone for every purpose from then on.
    pub(crate) expires_at: i64,
}

/// The operations of one transaction.
pub trait Tx {
    /// Locks the audit chain's head for this transaction (serialising
    /// writers) and returns it: (last sequence number, last hash).
    fn lock_audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError>;
    /// Appends an audit record and moves the head to it.
    fn append_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError>;
    /// A metadata value.
    fn meta_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a metadata value.
    fn meta_put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Inserts a row; `false` if the token is taken.
    fn insert(&mut self, row: &Row) -> Result<bool, StoreError>;
    /// The row of a token.
    fn get(&mut self, token: &str) -> Result<Option<Row>, StoreError>;
    /// An unexpired row with this fingerprint.
    fn by_fingerprint(&mut self, fingerprint: &[u8], now: i64) -> Result<Option<Row>, StoreError>;
    /// Deletes a row; `false` if there was none.
    fn delete(&mut self, token: &str) -> Result<bool, StoreError>;
    /// Deletes rows with `expires_at <= now`; returns how many.
    fn purge(&mut self, now: i64) -> Result<u64, StoreError>;
    /// Up to `limit` rows whose data key is wrapped by another KEK version.
    fn not_at_version(&mut self, version: u32, limit: u32) -> Result<Vec<Row>, StoreError>;
    /// Replaces a row's wrapped key (and fingerprint) after rotation, and
    /// its PAN ciphertext when one is given (a record resealed with its
    /// metadata bound).
    fn rewrap(
        &mut self,
        token: &str,
        version: u32,
        wrapped_key: &[u8],
        fingerprint: Option<&[u8]>,
        ciphertext: Option<&[u8]>,
    ) -> Result<(), StoreError>;
}

/// A vault store: runs a body in one transaction, committing if it returns
/// `Ok` and rolling back otherwise.
pub trait Store: Send {
    /// Runs `body` in a transaction.
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn Tx) -> Result<(), VaultError>) -> Result<(), VaultError>;
    /// Audit records with `seq > after`, oldest first, at most `limit`.
    fn audit_records(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// The recorded audit head (last sequence number and hash), unlocked.
    fn audit_head(&mut self) -> Result<(u64, [u8; 32]), StoreError>;
}

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The schema, written for SQLite; PostgreSQL takes it with `BLOB` →
/// `BYTEA`. Same tables, columns and indexes for both.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cardveil_meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cardveil_tokens (
    token TEXT PRIMARY KEY,
    kek_version INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    fingerprint BLOB,
    brand TEXT,
    last4 TEXT NOT NULL,
    digits INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS cardveil_tokens_fingerprint ON cardveil_tokens (fingerprint);
CREATE INDEX IF NOT EXISTS cardveil_tokens_expires ON cardveil_tokens (expires_at);
CREATE INDEX IF NOT EXISTS cardveil_tokens_kek ON cardveil_tokens (kek_version);
CREATE TABLE IF NOT EXISTS cardveil_audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    operation TEXT NOT NULL,
    token TEXT,
    outcome TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
";

/// The metadata key of the schema version.
pub(crate) const META_SCHEMA: &str = "schema_version";
/// The metadata key of the audit head: seq (8 bytes, big endian) ‖ hash.
pub(crate) const META_AUDIT_HEAD: &str = "audit_head";

/// Columns of a token row, in the order stores select them.
pub(crate) const ROW_COLUMNS: &str =
    "token, kek_version, wrapped_key, ciphertext, fingerprint, brand, last4, digits, created_at, expires_at";

/// Decodes the stored audit head.
pub(crate) fn decode_head(value: Option<Vec<u8>>) -> Result<(u64, [u8; 32]), StoreError> {
    match value {
        None => Ok((0, [0; 32])),
        Some(v) if v.len() == 40 => {
            let seq = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            Ok((seq, v[8..].try_into().expect("32 bytes")))
        }
        Some(_) => Err(StoreError("audit head is malformed".into())),
    }
}

/// Encodes the audit head.
pub(crate) fn encode_head(seq: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(hash);
    v
}
