//! The token vault: a PAN goes in, a token comes out; the PAN comes back
//! only through an explicit, audited [`Vault::detokenize`].
//!
//! * [`token`]: the two token formats (opaque `tok_…`, numeric).
//! * AES-256-GCM per record under a wrapped data key, KEK versions and
//!   rotation ([`Kek`]), HMAC fingerprints (internal: `crypto`).
//! * [`StoreVault`]: the [`Vault`] over any [`Store`] — [`SqliteStore`]
//!   (embedded, feature `sqlite`) or [`PostgresStore`] (shared, feature
//!   `postgres`), both with the same schema. Every operation and its audit
//!   record ([`AuditRecord`], a hash chain) commit in one transaction.
//! * [`CvvHolder`]: the CVV in memory only, single use, short TTL.
//! * [`Worker`]: tokenization on its own thread, so the audio path never
//!   waits on the vault.
//! * [`keyfile`]: the development key file (production keys come from the
//!   host); [`open`]: a vault from its [`Location`] and [`KeySource`].
//!
//! Nothing here logs, and no error or `Debug` output carries card data.

pub(crate) mod audit;
pub(crate) mod crypto;
mod cvv;
pub mod keyfile;
mod open;
mod ops;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
// The schema and the head codec serve the SQLite and PostgreSQL stores,
// unused in a build with neither.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) mod store;
pub(crate) mod time;
pub mod token;
mod worker;

pub use audit::{AuditKey, AuditRecord};
pub use crypto::{CryptoError, Kek};
pub use cvv::CvvHolder;
pub use open::{KeySource, Location, OpenError, OpenVault, Opened, open};
pub use ops::{Keyring, StoreVault, VaultConfig};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{Row, Store, StoreError, Tx};
pub use time::now;
pub use worker::{CVV_HOLD, Done, Worker};

use crate::capture::{Brand, Expiry, Pan};

/// Why a vault operation failed. Never carries card data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No record has this token (never issued, deleted or purged).
    #[error("unknown token")]
    NotFound,
    /// The record's time to live has passed (it is purged on the next purge).
    #[error("token expired")]
    Expired,
    /// The token is not in either token format.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// The record needs a key version the keyring does not have.
    #[error("no key-encryption key of version {0} is loaded")]
    UnknownKekVersion(u32),
    /// The loaded key of this version does not open the vault: a wrong key file.
    #[error("key-encryption key version {0} does not open this vault (wrong key?)")]
    WrongKey(u32),
    /// Rotation needs a KEK newer than the current one.
    #[error("KEK version {0} is not newer than the current version {1}")]
    KekNotNewer(u32, u32),
    /// A loaded key's version was never registered in this vault (only a
    /// rotation registers one): refused before anything is written, so no
    /// card is ever sealed under a key the vault does not know.
    #[error(
        "key-encryption key version {0} is not registered in this vault (only `vault rotate` adds a version; an interrupted rotate leaves one in the key file: remove that line): refused, nothing written"
    )]
    UnregisteredKek(u32),
    /// Rotation to a version the vault already has under another key.
    #[error("key-encryption key version {0} is already registered in this vault with another key")]
    KekVersionTaken(u32),
    /// A PAN of the wrong length was given.
    #[error("a PAN has 12 to 19 digits")]
    PanLength,
    /// The actor name is empty, too long or has control characters.
    #[error("actor must be 1 to 128 printable characters")]
    Actor,
    /// The database failed.
    #[error("vault store: {0}")]
    Store(#[from] StoreError),
    /// The vault's schema is newer than this build understands.
    #[error("vault schema version {0} is not supported (this build knows version {1})")]
    Schema(u32, u32),
    /// This vault does not offer the operation (e.g. a host callback vault
    /// that only tokenizes).
    #[error("this vault does not support {0}")]
    Unsupported(&'static str),
    /// The tokenization worker's queue is full or it has stopped.
    #[error("tokenization worker is busy or stopped")]
    WorkerUnavailable,
    /// The audit chain is broken: a record was edited, removed or inserted.
    #[error("audit chain broken at record {seq}: {what}")]
    AuditBroken {
        /// The first record that does not verify.
        seq: u64,
        /// What does not match.
        what: &'static str,
    },
    /// A key file could not be read or written, or is malformed.
    #[error("key file: {0}")]
    KeyFile(String),
}

/// The longest actor name the audit trail takes, in bytes.
pub const MAX_ACTOR_LEN: usize = 128;

/// Checks an actor name (who an operation is recorded as): 1 to
/// [`MAX_ACTOR_LEN`] bytes, no control characters (it goes into the audit
/// trail and into lines an operator reads).
///
/// # Errors
/// [`VaultError::Actor`].
pub fn check_actor(actor: &str) -> Result<(), VaultError> {
    if actor.is_empty() || actor.len() > MAX_ACTOR_LEN || actor.chars().any(char::is_control) {
        return Err(VaultError::Actor);
    }
    Ok(())
}

/// Which token format new tokens take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// `tok_` + 128 random bits + check characters (the default).
    #[default]
    Opaque,
    /// PAN length, last four kept, fails Luhn.
    Numeric,
}

/// What may be told about a token without detokenizing it. Contains the
/// brand and last four only (PCI DSS allows both in clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The token.
    pub token: String,
    /// The card brand, if the IIN is known.
    pub brand: Option<Brand>,
    /// The PAN's last four digits (ASCII).
    pub last4: [u8; 4],
    /// How many digits the PAN has.
    pub digits: u8,
    /// When the record was made (Unix seconds).
    pub created_at: i64,
    /// When it expires (Unix seconds; purged from then on).
    pub expires_at: i64,
    /// Whether tokenize returned an existing token for the same card.
    pub existing: bool,
}

impl Metadata {
    /// The last four as text.
    pub fn last4_str(&self) -> &str {
        std::str::from_utf8(&self.last4).unwrap_or("????")
    }
}

/// A token vault. [`StoreVault`] implements all of it; a host's own vault
/// (say, one that forwards the PAN to its payment provider) may implement
/// only [`Vault::tokenize`] and leave the rest unsupported.
///
/// `actor` names who asks (an agent id, a service, `cli:user`); it goes
/// into the audit record.
pub trait Vault: Send {
    /// Stores `pan` and returns its token. The TTL runs to the end of the
    /// expiry month if `expiry` is given, else the vault's default.
    fn tokenize(&mut self, pan: &Pan, expiry: Option<&Expiry>, actor: &str) -> Result<Metadata, VaultError>;

    /// The token's masked metadata.
    fn metadata(&mut self, token: &str, actor: &str) -> Result<Metadata, VaultError> {
        let _ = (token, actor);
        Err(VaultError::Unsupported("metadata"))
    }

    /// The PAN behind a token (audited).
    fn detokenize(&mut self, token: &str, actor: &str) -> Result<Pan, VaultError> {
        let _ = (token, actor);
        Err(VaultError::Unsupported("detokenize"))
    }

    /// Deletes a token's record.
    fn delete(&mut self, token: &str, actor: &str) -> Result<(), VaultError> {
        let _ = (token, actor);
        Err(VaultError::Unsupported("delete"))
    }

    /// Deletes every expired record; returns how many.
    fn purge(&mut self, actor: &str) -> Result<u64, VaultError> {
        let _ = actor;
        Err(VaultError::Unsupported("purge"))
    }
}

impl<V: Vault + ?Sized> Vault for Box<V> {
    fn tokenize(&mut self, pan: &Pan, expiry: Option<&Expiry>, actor: &str) -> Result<Metadata, VaultError> {
        (**self).tokenize(pan, expiry, actor)
    }
    fn metadata(&mut self, token: &str, actor: &str) -> Result<Metadata, VaultError> {
        (**self).metadata(token, actor)
    }
    fn detokenize(&mut self, token: &str, actor: &str) -> Result<Pan, VaultError> {
        (**self).detokenize(token, actor)
    }
    fn delete(&mut self, token: &str, actor: &str) -> Result<(), VaultError> {
        (**self).delete(token, actor)
    }
    fn purge(&mut self, actor: &str) -> Result<u64, VaultError> {
        (**self).purge(actor)
    }
}
