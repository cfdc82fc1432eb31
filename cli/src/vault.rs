//! Opening the vault from the command line, and `cardveil vault
//! reveal|delete|purge|rotate|audit verify`.
//!
//! Where the vault is: `--vault PATH`, else `$CARDVEIL_VAULT`, else
//! `$XDG_DATA_HOME/cardveil/vault.sqlite` (`~/.local/share/cardveil/…`).
//! A value starting `postgres://`, `postgresql://` or `host=` is a
//! PostgreSQL server instead. The keys: `--key-file`, else
//! `$CARDVEIL_KEY_FILE`, else (SQLite only) the vault's path + `.key`,
//! created with a random key on first use — a development convenience:
//! production keys come from the host's key store.

use std::io::Write;
use std::path::{Path, PathBuf};

use cardveil_core::vault::{self, KeySource, Location, OpenError, OpenVault, VaultConfig, VaultError, keyfile};

use crate::CliError;
use crate::json::Obj;

/// Where the vault and its keys are, as given (or defaulted).
#[derive(Debug, Clone)]
pub struct VaultLocation {
    /// `--vault` or `$CARDVEIL_VAULT` (else the default path).
    pub vault: Option<String>,
    /// `--key-file` or `$CARDVEIL_KEY_FILE`.
    pub key_file: Option<PathBuf>,
}

/// The default vault file: `$XDG_DATA_HOME/cardveil/vault.sqlite`, else
/// `$HOME/.local/share/cardveil/vault.sqlite`. Neither set (or set to a
/// relative path) is an error, never a vault in the current directory.
pub fn default_path() -> Result<PathBuf, CliError> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let data = std::env::var_os("XDG_DATA_HOME")
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").and_then(absolute).map(|h| h.join(".local/share")))
        .ok_or_else(|| {
            CliError::Usage("no vault location: HOME is not set (give --vault PATH or set CARDVEIL_VAULT)".into())
        })?;
    Ok(data.join("cardveil").join("vault.sqlite"))
}

/// Refuses a vault or key path under `/dev`, `/proc` or `/sys` (a device
/// or a kernel file is no place for card data or keys, and `/dev/null`
/// would make cardveil write files into `/dev`).
fn check_path(path: &Path, what: &str) -> Result<(), CliError> {
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_owned())
    };
    if ["/dev", "/proc", "/sys"].iter().any(|d| abs.starts_with(d)) {
        return Err(CliError::input(path, format!("refused as the {what}: under /dev, /proc or /sys")));
    }
    Ok(())
}

fn is_postgres(v: &str) -> bool {
    matches!(Location::parse(v), Location::Postgres(_))
}

fn verr(what: &str, e: VaultError) -> CliError {
    CliError::Input { path: what.to_owned(), message: e.to_string() }
}

impl VaultLocation {
    /// From the flags, falling back to the environment.
    pub fn new(vault: Option<String>, key_file: Option<PathBuf>) -> VaultLocation {
        VaultLocation {
            vault: vault.or_else(|| std::env::var("CARDVEIL_VAULT").ok().filter(|v| !v.is_empty())),
            key_file: key_file
                .or_else(|| std::env::var_os("CARDVEIL_KEY_FILE").filter(|v| !v.is_empty()).map(PathBuf::from)),
        }
    }

    /// A name for messages: the path, or "postgres" (never the URL, which
    /// may hold a password).
    fn name(&self) -> String {
        match &self.vault {
            Some(v) if is_postgres(v) => "postgres vault".into(),
            Some(v) => v.clone(),
            None => default_path().map_or_else(|_| "(no vault location)".into(), |p| p.display().to_string()),
        }
    }

    /// The key file: `--key-file` / `$CARDVEIL_KEY_FILE`, else the SQLite
    /// vault's path + `.key`; a PostgreSQL vault needs it given.
    fn key_path(&self) -> Result<PathBuf, CliError> {
        if let Some(k) = &self.key_file {
            check_path(k, "key file")?;
            return Ok(k.clone());
        }
        match self.vault.as_deref() {
            Some(url) if is_postgres(url) => Err(CliError::Usage(
                "a PostgreSQL vault needs --key-file (or CARDVEIL_KEY_FILE): the key every host shares".into(),
            )),
            v => {
                let mut p = v.map_or_else(default_path, |v| Ok(PathBuf::from(v)))?.into_os_string();
                p.push(".key");
                let p = PathBuf::from(p);
                check_path(&p, "key file")?;
                Ok(p)
            }
        }
    }

    /// Opens the vault. With `create`, a missing SQLite file (and its
    /// directory and key file) is created; otherwise it must exist.
    pub fn open(&self, config: VaultConfig, create: bool, warn: &mut dyn Write) -> Result<OpenVault, CliError> {
        let name = self.name();
        let path;
        let location = match self.vault.as_deref() {
            Some(url) if is_postgres(url) => Location::Postgres(url),
            v => {
                path = v.map_or_else(default_path, |v| Ok(PathBuf::from(v)))?;
                check_path(&path, "vault")?;
                if !path.exists() {
                    if !create {
                        return Err(CliError::input(&path, "no vault here (give --vault PATH)"));
                    }
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
                        let mut b = std::fs::DirBuilder::new();
                        b.recursive(true);
                        #[cfg(unix)]
                        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                        b.create(dir).map_err(|e| CliError::input(dir, e))?;
                    }
                }
                Location::Sqlite(&path)
            }
        };
        let key_path = self.key_path()?;
        let key_name = key_path.display().to_string();
        // Only the default key file is created, and only when the vault may be.
        let keys = if create && self.key_file.is_none() {
            KeySource::FileOrCreate(&key_path)
        } else {
            KeySource::File(&key_path)
        };
        let opened = vault::open(location, keys, config).map_err(|e| match e {
            OpenError::Keys(e) => verr(&key_name, e),
            OpenError::Store(e) => verr(&name, e),
        })?;
        if opened.created_key {
            let _ = writeln!(
                warn,
                "cardveil: warning: created development key file {key_name} (mode 0600); production keys must come from the host's key store"
            );
        }
        Ok(opened.vault)
    }
}

/// An exported audit head, `SEQ:TAG` (TAG: 64 hex digits).
fn parse_head(text: &str) -> Result<(u64, [u8; 32]), CliError> {
    let bad = || CliError::Usage("--head takes SEQ:TAG as `cardveil vault audit head` prints it".into());
    let (seq, hex) = text.trim().split_once(':').ok_or_else(bad)?;
    let seq = seq.parse().map_err(|_| bad())?;
    let tag: [u8; 32] = crate::hex::decode(hex).and_then(|t| t.try_into().ok()).ok_or_else(bad)?;
    Ok((seq, tag))
}

/// Who the CLI acts as in the audit trail: `cli:` and the login name.
pub fn actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let user: String = user.chars().filter(|c| !c.is_control()).take(100).collect();
    format!("cli:{user}")
}

/// The `vault` operations.
#[derive(Debug, Clone)]
pub enum VaultOp {
    /// Print the PAN behind a token (audited).
    Reveal(String),
    /// Delete a token's record.
    Delete(String),
    /// Delete every expired record.
    Purge,
    /// Add a new key version to the key file and rewrap every record.
    Rotate,
    /// Verify the audit chain (and that it holds an exported head `SEQ:TAG`).
    AuditVerify(Option<String>),
    /// Print the audit head to keep elsewhere.
    AuditHead,
}

/// Runs `cardveil vault …`.
pub fn run(op: &VaultOp, location: &VaultLocation, out: &mut dyn Write) -> Result<(), CliError> {
    let mut stderr = std::io::stderr();
    let mut v = location.open(VaultConfig::default(), false, &mut stderr)?;
    let name = location.name();
    let actor = actor();
    let w = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| CliError::input(Path::new("<stdout>"), e))
    };
    // What was typed is named in errors only if it is a well-formed token:
    // anything else may be a card number typed in the wrong place.
    let shown = |token: &str| match cardveil_core::vault::token::validate(token) {
        Ok(()) => token.to_owned(),
        Err(_) => "the token given".to_owned(),
    };
    match op {
        VaultOp::Reveal(token) => {
            let pan = v.vault().detokenize(token, &actor).map_err(|e| verr(&shown(token), e))?;
            // The one place card data is printed, on purpose.
            let mut line = zeroize::Zeroizing::new(String::with_capacity(20));
            line.extend(pan.expose().iter().map(|&d| char::from(b'0' + d)));
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(|e| CliError::input(Path::new("<stdout>"), e))
        }
        VaultOp::Delete(token) => {
            v.vault().delete(token, &actor).map_err(|e| verr(&shown(token), e))?;
            w(out, Obj::event("deleted").str("token", token).finish())
        }
        VaultOp::Purge => {
            let n = v.vault().purge(&actor).map_err(|e| verr(&name, e))?;
            w(out, Obj::event("purged").int("records", n).finish())
        }
        VaultOp::Rotate => {
            let key_file = location.key_path()?;
            let keys = keyfile::add_version(&key_file).map_err(|e| verr(&key_file.display().to_string(), e))?;
            let kek = keys.into_current();
            let version = kek.version();
            let n = v.rotate(kek, &actor).map_err(|e| {
                // Refused before the vault registered the version: the key
                // file loses it again, so nothing of the failed rotation stays.
                if matches!(e, VaultError::KekNotNewer(..) | VaultError::KekVersionTaken(_) | VaultError::Actor) {
                    let _ = keyfile::remove_version(&key_file, version);
                }
                verr(&name, e)
            })?;
            w(out, Obj::event("rotated").int("kek_version", version).int("records", n).finish())
        }
        VaultOp::AuditVerify(head) => {
            let exported = head.as_deref().map(parse_head).transpose()?;
            let n = v.verify_audit_against(exported).map_err(|e| verr(&name, e))?;
            w(out, Obj::event("audit").str("status", "ok").int("records", n).finish())
        }
        VaultOp::AuditHead => {
            let (seq, tag) = v.audit_head().map_err(|e| verr(&name, e))?;
            let head = format!("{seq}:{}", crate::hex::encode(&tag));
            w(out, Obj::event("audit-head").int("seq", seq).str("head", &head).finish())
        }
    }
}
