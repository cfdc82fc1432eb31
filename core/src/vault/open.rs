//! Opening a vault from where it is and where its keys are: the one policy
//! the C engine and the command line share (SQLite file or PostgreSQL
//! server; a key file, or the host's key-encryption key).
// Built without either store (the fuzz targets, Miri), `open` refuses
// every location and `OpenVault` has no value.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unreachable_code, unused_imports, unused_variables)
)]

use std::path::{Path, PathBuf};

use super::crypto::Kek;
use super::{Keyring, StoreVault, Vault, VaultConfig, VaultError, keyfile};

/// Where a vault's records are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// A SQLite file (created if missing).
    Sqlite(&'a Path),
    /// A PostgreSQL server: a libpq-style string or a `postgres://` URL
    /// (its `Debug` leaves it out: it may hold a password).
    Postgres(&'a str),
}

impl std::fmt::Debug for Location<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Location::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl<'a> Location<'a> {
    /// A location as users write it: `postgres://…`, `postgresql://…` or
    /// `host=…` is a PostgreSQL server, anything else a SQLite file.
    pub fn parse(text: &'a str) -> Location<'a> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") || text.starts_with("host=") {
            Location::Postgres(text)
        } else {
            Location::Sqlite(Path::new(text))
        }
    }

    /// The key file used when none is given: a SQLite vault's path +
    /// `.key`; a PostgreSQL vault has none (every host must be given the
    /// key they share).
    pub fn default_key_file(&self) -> Option<PathBuf> {
        match self {
            Location::Sqlite(path) => {
                let mut p = path.as_os_str().to_owned();
                p.push(".key");
                Some(PathBuf::from(p))
            }
            Location::Postgres(_) => None,
        }
    }
}

/// Where a vault's keys come from.
#[derive(Debug)]
pub enum KeySource<'a> {
    /// The host's key-encryption key (from its key store; boxed: its key
    /// schedules are large).
    Kek(Box<Kek>),
    /// A key file that must exist (`cardveil keygen` writes one).
    File(&'a Path),
    /// A key file, created with a random key (mode 0600) if missing: a
    /// development convenience; production keys come from the host.
    FileOrCreate(&'a Path),
}

/// An open vault: a [`StoreVault`] over the store its [`Location`] named.
pub enum OpenVault {
    /// The SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(StoreVault<super::SqliteStore>),
    /// The PostgreSQL server (boxed: its statement cache makes it large).
    #[cfg(feature = "postgres")]
    Postgres(Box<StoreVault<super::PostgresStore>>),
    /// Built without either store: no vault can be opened.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[doc(hidden)]
    None(std::convert::Infallible),
}

impl std::fmt::Debug for OpenVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self {
            #[cfg(feature = "sqlite")]
            OpenVault::Sqlite(_) => "OpenVault(sqlite)",
            #[cfg(feature = "postgres")]
            OpenVault::Postgres(_) => "OpenVault(postgres)",
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            OpenVault::None(_) => unreachable!("no store in this build"),
        })
    }
}

/// Runs `$body` with `$v` bound to the `StoreVault` inside, whichever store.
macro_rules! each_store {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            OpenVault::Sqlite($v) => $body,
            #[cfg(feature = "postgres")]
            OpenVault::Postgres($v) => $body,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            OpenVault::None(_) => unreachable!("no store in this build"),
        }
    };
}

/// A vault opened by [`open`], and whether its key file was created now.
#[derive(Debug)]
pub struct Opened {
    /// The vault.
    pub vault: OpenVault,
    /// [`KeySource::FileOrCreate`] created the key file (say so to the
    /// operator: it is a development key).
    pub created_key: bool,
}

/// Why [`open`] failed: the keys, or the store (so a message can name the
/// key file or the vault).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The key file cannot be read, parsed or created.
    #[error(transparent)]
    Keys(VaultError),
    /// The store cannot be opened or connected to, its schema is newer
    /// than this build, or it was left out of this build
    /// ([`VaultError::Unsupported`]).
    #[error(transparent)]
    Store(VaultError),
}

/// Opens the vault at `location` with the keys from `keys`.
///
/// # Errors
/// [`OpenError`].
pub fn open(location: Location<'_>, keys: KeySource<'_>, config: VaultConfig) -> Result<Opened, OpenError> {
    let (ring, created_key) = match keys {
        KeySource::Kek(kek) => (Keyring::new(*kek), false),
        KeySource::File(path) => (keyfile::load(path).map_err(OpenError::Keys)?, false),
        KeySource::FileOrCreate(path) => keyfile::load_or_create(path).map_err(OpenError::Keys)?,
    };
    let vault = match location {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => super::SqliteStore::open(path)
            .and_then(|store| StoreVault::open(store, ring, config))
            .map(OpenVault::Sqlite),
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => super::PostgresStore::connect(url)
            .and_then(|store| StoreVault::open(store, ring, config))
            .map(|v| OpenVault::Postgres(Box::new(v))),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (ring, config);
            Err(VaultError::Unsupported("this store (left out of this build)"))
        }
    };
    Ok(Opened { vault: vault.map_err(OpenError::Store)?, created_key })
}

impl OpenVault {
    /// As a `Vault` (e.g. for the [`super::Worker`]).
    pub fn into_boxed(self) -> Box<dyn Vault> {
        each_store!(self, v => Box::new(v) as Box<dyn Vault>)
    }

    /// The [`Vault`] operations.
    pub fn vault(&mut self) -> &mut dyn Vault {
        match self {
            #[cfg(feature = "sqlite")]
            OpenVault::Sqlite(v) => v,
            #[cfg(feature = "postgres")]
            OpenVault::Postgres(v) => &mut **v,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            OpenVault::None(_) => unreachable!("no store in this build"),
        }
    }

    /// See [`StoreVault::verify_audit_against`].
    ///
    /// # Errors
    /// As there.
    pub fn verify_audit_against(&mut self, exported: Option<(u64, [u8; 32])>) -> Result<u64, VaultError> {
        each_store!(self, v => v.verify_audit_against(exported))
    }

    /// See [`StoreVault::audit_head`].
    ///
    /// # Errors
    /// As there.
    pub fn audit_head(&mut self) -> Result<(u64, [u8; 32]), VaultError> {
        each_store!(self, v => v.audit_head())
    }

    /// See [`StoreVault::rotate`].
    ///
    /// # Errors
    /// As there.
    pub fn rotate(&mut self, kek: Kek, actor: &str) -> Result<u64, VaultError> {
        each_store!(self, v => v.rotate(kek, actor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_users_write_them() {
        assert_eq!(Location::parse("postgres://u@h/db"), Location::Postgres("postgres://u@h/db"));
        assert_eq!(Location::parse("postgresql://h/db"), Location::Postgres("postgresql://h/db"));
        assert_eq!(Location::parse("host=/tmp dbname=v"), Location::Postgres("host=/tmp dbname=v"));
        assert_eq!(Location::parse("vault.sqlite"), Location::Sqlite(Path::new("vault.sqlite")));
        assert_eq!(Location::parse("dir/v.db").default_key_file(), Some(PathBuf::from("dir/v.db.key")));
        assert_eq!(Location::parse("host=h").default_key_file(), None);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_sqlite_vault_opens_with_a_created_key_then_with_the_file() {
        let dir = std::env::temp_dir().join(format!("cardveil-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("v.sqlite");
        let location = Location::Sqlite(&db);
        let key = location.default_key_file().unwrap();
        let missing = open(location, KeySource::File(&key), VaultConfig::default());
        assert!(matches!(missing, Err(OpenError::Keys(_))), "a key file that must exist and does not");
        let no_dir = Location::Sqlite(Path::new("/nonexistent-cardveil-dir/v.sqlite"));
        let bad_store = open(no_dir, KeySource::FileOrCreate(&dir.join("other.key")), VaultConfig::default());
        assert!(matches!(bad_store, Err(OpenError::Store(_))), "a SQLite file that cannot be created");
        let first = open(location, KeySource::FileOrCreate(&key), VaultConfig::default()).unwrap();
        assert!(first.created_key);
        let pan = crate::capture::Pan::from_ascii(b"4111111111111111").unwrap();
        let mut v = first.vault;
        let token = v.vault().tokenize(&pan, None, "test").unwrap().token;
        drop(v);
        let mut again = open(location, KeySource::File(&key), VaultConfig::default()).unwrap();
        assert!(!again.created_key);
        assert_eq!(again.vault.vault().detokenize(&token, "test").unwrap().expose(), pan.expose());
        assert_eq!(again.vault.verify_audit_against(None).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
