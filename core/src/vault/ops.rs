//! [`StoreVault`]: the vault's operations over any [`Store`].

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::audit::{self, AuditKey, AuditRecord, Verifier};
use super::crypto::{self, Kek, Sealed};
use super::store::{META_SCHEMA, Row, SCHEMA_VERSION, Store, StoreError, Tx};
use super::{Metadata, TokenFormat, Vault, VaultError, check_actor, time, token};
use crate::capture::{Brand, Expiry, PAN_DIGITS, Pan, last_four};

/// The KEKs a vault holds: the current one (highest version) seals; older
/// ones only open records not yet rewrapped.
#[derive(Debug)]
pub struct Keyring {
    keks: Vec<Kek>,
}

impl Keyring {
    /// A keyring with one KEK.
    pub fn new(kek: Kek) -> Keyring {
        Keyring { keks: vec![kek] }
    }

    /// Adds a KEK (replacing one of the same version); the highest version
    /// becomes current.
    pub fn add(&mut self, kek: Kek) {
        self.keks.retain(|k| k.version() != kek.version());
        self.keks.push(kek);
        self.keks.sort_by_key(Kek::version);
    }

    /// The KEK that seals new records.
    pub fn current(&self) -> &Kek {
        self.keks.last().expect("a keyring has at least one KEK")
    }

    /// The current KEK, taking the keyring apart.
    pub fn into_current(mut self) -> Kek {
        self.keks.pop().expect("a keyring has at least one KEK")
    }

    /// The KEK of `version`, if loaded.
    pub fn get(&self, version: u32) -> Option<&Kek> {
        self.keks.iter().find(|k| k.version() == version)
    }

    /// Versions loaded, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keks.iter().map(Kek::version)
    }
}

/// Vault settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultConfig {
    /// Token format of new tokens.
    pub format: TokenFormat,
    /// Return the existing unexpired token when the same PAN comes again
    /// (a keyed fingerprint finds it without decrypting).
    pub same_card_same_token: bool,
    /// TTL in seconds when no expiry is given (default 90 days).
    pub default_ttl: i64,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig { format: TokenFormat::Opaque, same_card_same_token: false, default_ttl: 90 * 86_400 }
    }
}

/// What one audited operation did.
struct Step<T> {
    outcome: String,
    token: Option<String>,
    result: Result<T, VaultError>,
}

fn step<T>(
    outcome: impl Into<String>,
    token: Option<&str>,
    result: Result<T, VaultError>,
) -> Result<Step<T>, VaultError> {
    Ok(Step { outcome: outcome.into(), token: token.map(str::to_owned), result })
}

/// The audit outcome of an operation offered something that is not a
/// token (the value itself is never recorded: it may be a PAN).
const REFUSED: &str = "refused: not a well-formed token";

/// Records rewrapped per transaction during rotation.
const REWRAP_BATCH: u32 = 256;

/// The vault over a store: tokens, sealing, TTLs, rotation and the audit
/// chain, each operation one transaction with its audit record.
pub struct StoreVault<S: Store> {
    store: S,
    keys: Keyring,
    config: VaultConfig,
    rng: SystemRandom,
    clock: fn() -> i64,
    /// The audit key's secret (to seal it under a new KEK at rotation) and the key.
    audit: Option<Box<(Zeroizing<[u8; 32]>, AuditKey)>>,
}

impl<S: Store> std::fmt::Debug for StoreVault<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreVault").field("keys", &self.keys).field("config", &self.config).finish_non_exhaustive()
    }
}

/// The 128-bit id bound into a record's seals: an opaque token's own bits,
/// or a hash of a numeric token.
fn token_id(token: &str) -> Result<[u8; 16], token::TokenError> {
    if token.starts_with(token::PREFIX) {
        return token::parse_opaque(token);
    }
    if !PAN_DIGITS.contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(token::TokenError::Malformed);
    }
    let h =
        digest::digest(&digest::SHA256, [b"cardveil numeric token ".as_slice(), token.as_bytes()].concat().as_slice());
    Ok(h.as_ref()[..16].try_into().expect("16 bytes"))
}

/// The metadata a record's PAN ciphertext is bound to (see [`crypto::record_context`]).
fn context_of(row: &Row) -> Vec<u8> {
    crypto::record_context(row.expires_at, &row.last4, row.digits, !row.token.starts_with(token::PREFIX))
}

/// The context of the canaries (no record metadata).
const CANARY_CONTEXT: &[u8] = b"cardveil canary";

/// The audit key sealed under KEK `version`: 32 secret bytes ‖ the first
/// keyed record's sequence number (8 bytes, big endian).
fn audit_key_meta(version: u32) -> String {
    format!("audit_key_v{version}")
}
/// Associated data label of the sealed audit key.
const AUDIT_KEY_LABEL: &[u8] = b"cardveil audit key";
/// Present once a vault has an audit key: from then on a missing key is tampering.
const META_AUDIT_KEYED: &str = "audit_keyed";

fn wrap_audit_key(secret: &[u8; 32], keyed_from: u64, kek: &Kek, rng: &SystemRandom) -> Result<Vec<u8>, VaultError> {
    let plain = Zeroizing::new([secret.as_slice(), &keyed_from.to_be_bytes()].concat());
    Ok(crypto::wrap_secret(&plain, AUDIT_KEY_LABEL, kek, rng)?)
}

/// Loads the vault's audit key (sealed under any loaded KEK), or creates
/// it — for a new vault, or one written before audit keys — tagging from
/// the next record on (after `head_seq`). Runs inside the opening
/// transaction, after the audit head is locked (concurrent openers do not
/// race to create it).
fn load_audit_key(
    tx: &mut dyn Tx,
    keys: &Keyring,
    rng: &SystemRandom,
    head_seq: u64,
) -> Result<(Zeroizing<[u8; 32]>, u64), VaultError> {
    for version in keys.versions() {
        let Some(sealed) = tx.meta_get(&audit_key_meta(version))? else { continue };
        let kek = keys.get(version).expect("listed");
        let plain = crypto::unwrap_secret(&sealed, AUDIT_KEY_LABEL, kek).map_err(|_| VaultError::WrongKey(version))?;
        if plain.len() != 40 {
            return Err(VaultError::AuditBroken { seq: 0, what: "the sealed audit key is malformed" });
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&plain[..32]);
        let keyed_from = u64::from_be_bytes(plain[32..].try_into().expect("8 bytes"));
        // Versions registered before this build sealed it get it too.
        for other in keys.versions().filter(|&v| v != version) {
            if tx.meta_get(&audit_key_meta(other))?.is_none() {
                let kek = keys.get(other).expect("listed");
                tx.meta_put(&audit_key_meta(other), &wrap_audit_key(&secret, keyed_from, kek, rng)?)?;
            }
        }
        return Ok((secret, keyed_from));
    }
    if tx.meta_get(META_AUDIT_KEYED)?.is_some() {
        return Err(VaultError::AuditBroken { seq: 0, what: "the vault's sealed audit key is missing" });
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill(&mut secret[..]).map_err(|_| VaultError::Crypto(crypto::CryptoError::Random))?;
    let keyed_from = head_seq + 1;
    for version in keys.versions() {
        let kek = keys.get(version).expect("listed");
        tx.meta_put(&audit_key_meta(version), &wrap_audit_key(&secret, keyed_from, kek, rng)?)?;
    }
    tx.meta_put(META_AUDIT_KEYED, b"1")?;
    Ok((secret, keyed_from))
}

fn brand_of(name: Option<&str>) -> Option<Brand> {
    name.and_then(|n| Brand::ALL.iter().copied().find(|b| b.name() == n))
}

fn metadata(row: &Row, existing: bool) -> Metadata {
    let mut last4 = [b'?'; 4];
    if row.last4.len() == 4 {
        last4.copy_from_slice(row.last4.as_bytes());
    }
    Metadata {
        token: row.token.clone(),
        brand: brand_of(row.brand.as_deref()),
        last4,
        digits: row.digits,
        created_at: row.created_at,
        expires_at: row.expires_at,
        existing,
    }
}

/// A canary sealed under each KEK version the vault has seen, so a wrong
/// key is refused on open instead of failing record by record.
fn canary_key(version: u32) -> String {
    format!("kek_check_v{version}")
}
const CANARY_TOKEN: [u8; 16] = *b"cardveil-canary!";

fn canary_pan() -> Pan {
    Pan::from_ascii(b"0000000000000000").expect("digits")
}

fn encode_sealed(s: &Sealed) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + s.wrapped_key.len() + s.ciphertext.len());
    v.extend_from_slice(&(s.wrapped_key.len() as u16).to_be_bytes());
    v.extend_from_slice(&s.wrapped_key);
    v.extend_from_slice(&s.ciphertext);
    v
}

fn decode_sealed(v: &[u8], version: u32) -> Option<Sealed> {
    let n = u16::from_be_bytes(v.get(..2)?.try_into().ok()?) as usize;
    let wrapped_key = v.get(2..2 + n)?.to_vec();
    let ciphertext = v.get(2 + n..)?.to_vec();
    Some(Sealed { token_id: CANARY_TOKEN, kek_version: version, wrapped_key, ciphertext })
}

impl<S: Store> StoreVault<S> {
    /// Opens the vault in `store` (creating its schema if new) with `keys`.
    ///
    /// # Errors
    /// [`VaultError::WrongKey`] if a loaded KEK does not open the canary
    /// the vault sealed under that version; [`VaultError::Schema`] for a
    /// schema from a newer build; store errors.
    pub fn open(store: S, keys: Keyring, config: VaultConfig) -> Result<StoreVault<S>, VaultError> {
        let mut v = StoreVault { store, keys, config, rng: SystemRandom::new(), clock: time::now, audit: None };
        let (keys, rng) = (&v.keys, &v.rng);
        let mut audit_key = None;
        v.store.transaction(&mut |tx| {
            // Openers one at a time (the audit head's lock), so two never
            // create two audit keys for one vault.
            let (head_seq, _) = tx.lock_audit_head()?;
            // A new vault registers the versions it is created with; an
            // existing one takes only versions registered before.
            let schema = tx.meta_get(META_SCHEMA)?;
            let fresh = schema.is_none();
            match schema {
                None => tx.meta_put(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?,
                Some(b) => {
                    let found = b.as_slice().try_into().map(u32::from_be_bytes).unwrap_or(u32::MAX);
                    if found != SCHEMA_VERSION {
                        return Err(VaultError::Schema(found, SCHEMA_VERSION));
                    }
                }
            }
            for version in keys.versions() {
                let kek = keys.get(version).expect("listed");
                match tx.meta_get(&canary_key(version))? {
                    Some(b) => {
                        let ok =
                            decode_sealed(&b, version).is_some_and(|s| crypto::open(&s, CANARY_CONTEXT, kek).is_ok());
                        if !ok {
                            return Err(VaultError::WrongKey(version));
                        }
                    }
                    None if fresh => {
                        let s = crypto::seal(&canary_pan(), CANARY_TOKEN, CANARY_CONTEXT, kek, rng)?;
                        tx.meta_put(&canary_key(version), &encode_sealed(&s))?;
                    }
                    None => return Err(VaultError::UnregisteredKek(version)),
                }
            }
            audit_key = Some(load_audit_key(tx, keys, rng, head_seq)?);
            Ok(())
        })?;
        let (secret, keyed_from) = audit_key.expect("the transaction ran");
        let key = AuditKey::new(&secret, keyed_from);
        v.audit = Some(Box::new((secret, key)));
        Ok(v)
    }

    /// Replaces the clock (Unix seconds), for tests of TTLs and purges.
    pub fn set_clock(&mut self, clock: fn() -> i64) {
        self.clock = clock;
    }

    /// The store.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Runs an operation in one transaction with its audit record. `body`
    /// returns a [`Step`]: the outcome text, the token it concerned and the
    /// operation's result; the record is written whatever the result (a
    /// refused detokenize is audited too). Errors of the store itself roll
    /// everything back.
    fn audited<T>(
        &mut self,
        actor: &str,
        operation: &str,
        mut body: impl FnMut(&mut dyn Tx, &Keyring, &SystemRandom, i64) -> Result<Step<T>, VaultError>,
    ) -> Result<T, VaultError> {
        check_actor(actor)?;
        let now = (self.clock)();
        let (keys, rng) = (&self.keys, &self.rng);
        let key = self.audit.as_deref().map(|(_, k)| k);
        let mut result = None;
        self.store.transaction(&mut |tx| {
            let head = tx.lock_audit_head()?;
            let step = body(tx, keys, rng, now)?;
            let record: AuditRecord =
                audit::next(key, head, now, actor, operation, step.token.as_deref(), &step.outcome);
            tx.append_audit(&record)?;
            result = Some(step.result);
            Ok(())
        })?;
        result.expect("the transaction ran the body")
    }

    /// Verifies the audit chain from the first record to the recorded
    /// head; returns how many records it holds.
    ///
    /// # Errors
    /// [`VaultError::AuditBroken`] at the first record that does not verify.
    pub fn verify_audit(&mut self) -> Result<u64, VaultError> {
        self.verify_audit_against(None)
    }

    /// The audit head — the last record's sequence number and tag — to
    /// export and keep elsewhere ([`StoreVault::verify_audit_against`]).
    ///
    /// # Errors
    /// Store errors.
    pub fn audit_head(&mut self) -> Result<(u64, [u8; 32]), VaultError> {
        Ok(self.store.audit_head()?)
    }

    /// Verifies the audit chain as [`StoreVault::verify_audit`] does and,
    /// with `exported`, that it still holds that head (a cut tail or a
    /// chain rebuilt since is found, even with the stored head rewritten).
    ///
    /// # Errors
    /// [`VaultError::AuditBroken`] at the first record that does not verify.
    pub fn verify_audit_against(&mut self, exported: Option<(u64, [u8; 32])>) -> Result<u64, VaultError> {
        let head = self.store.audit_head()?;
        let v = match self.audit.as_deref() {
            Some((_, key)) => Verifier::keyed(key),
            None => Verifier::new(),
        };
        let mut v = match exported {
            Some(e) => v.expect(e),
            None => v,
        };
        let mut after = 0;
        loop {
            let batch = self.store.audit_records(after, 1000)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in &batch {
                v.check(r)?;
            }
        }
        v.finish(head)
    }

    /// Makes `kek` current and rewraps every data key (and fingerprint)
    /// under it; older KEKs stay loaded for records a concurrent writer
    /// added meanwhile. Returns how many records were rewrapped.
    pub fn rotate(&mut self, kek: Kek, actor: &str) -> Result<u64, VaultError> {
        check_actor(actor)?;
        let version = kek.version();
        if version <= self.keys.current().version() {
            return Err(VaultError::KekNotNewer(version, self.keys.current().version()));
        }
        // Registering the version is one transaction: a version registered
        // already (a concurrent rotate, or an earlier one with another key)
        // is refused unless this very key opens it (a rotation resumed).
        let canary = crypto::seal(&canary_pan(), CANARY_TOKEN, CANARY_CONTEXT, &kek, &self.rng)?;
        let audit = self.audit.as_deref().map(|(secret, key)| (secret, key.keyed_from()));
        let rng = &self.rng;
        self.store.transaction(&mut |tx| {
            match tx.meta_get(&canary_key(version))? {
                Some(b)
                    if decode_sealed(&b, version).is_some_and(|s| crypto::open(&s, CANARY_CONTEXT, &kek).is_ok()) => {}
                Some(_) => return Err(VaultError::KekVersionTaken(version)),
                None => tx.meta_put(&canary_key(version), &encode_sealed(&canary))?,
            }
            // The audit key is sealed under the new version too, so the
            // chain verifies once older keys are retired.
            if let Some((secret, keyed_from)) = audit {
                tx.meta_put(&audit_key_meta(version), &wrap_audit_key(secret, keyed_from, &kek, rng)?)?;
            }
            Ok(())
        })?;
        self.keys.add(kek);
        let mut total = 0u64;
        loop {
            let same_card = self.config.same_card_same_token;
            let n = self.audited(actor, "rotate", |tx, keys, rng, _| {
                let new = keys.current();
                let rows = tx.not_at_version(new.version(), REWRAP_BATCH)?;
                for row in &rows {
                    let old = keys.get(row.kek_version).ok_or(VaultError::UnknownKekVersion(row.kek_version))?;
                    let id = token_id(&row.token)?;
                    let sealed = Sealed {
                        token_id: id,
                        kek_version: row.kek_version,
                        wrapped_key: row.wrapped_key.clone(),
                        ciphertext: row.ciphertext.clone(),
                    };
                    // Every record is opened on the way (an edited one stops
                    // the rotation); one sealed before its metadata was
                    // bound is resealed with it.
                    let context = context_of(row);
                    let (pan, legacy) = crypto::open_record(&sealed, &context, old)?;
                    let fingerprint = match (&row.fingerprint, same_card) {
                        (Some(_), true) => Some(new.fingerprint(&pan).to_vec()),
                        _ => None,
                    };
                    if legacy {
                        let r = crypto::seal(&pan, id, &context, new, rng)?;
                        tx.rewrap(
                            &row.token,
                            new.version(),
                            &r.wrapped_key,
                            fingerprint.as_deref(),
                            Some(&r.ciphertext),
                        )?;
                    } else {
                        let r = crypto::rewrap(&sealed, old, new, rng)?;
                        tx.rewrap(&row.token, new.version(), &r.wrapped_key, fingerprint.as_deref(), None)?;
                    }
                }
                step(format!("rewrapped {} to KEK version {}", rows.len(), new.version()), None, Ok(rows.len() as u64))
            })?;
            total += n;
            if n < REWRAP_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

impl<S: Store> Vault for StoreVault<S> {
    fn tokenize(&mut self, pan: &Pan, expiry: Option<&Expiry>, actor: &str) -> Result<Metadata, VaultError> {
        let digits = pan.expose();
        let Some(last4) = last_four(digits).filter(|_| PAN_DIGITS.contains(&digits.len())) else {
            return Err(VaultError::PanLength);
        };
        let config = self.config;
        let last4: String = last4.iter().map(|&b| b as char).collect();
        let brand = Brand::of(digits).map(|b| b.name().to_owned());
        self.audited(actor, "tokenize", |tx, keys, rng, now| {
            let expires_at = expiry.and_then(time::end_of_expiry_month).unwrap_or(now + config.default_ttl);
            let kek = keys.current();
            let fingerprint = config.same_card_same_token.then(|| kek.fingerprint(pan).to_vec());
            if let Some(fp) = &fingerprint
                && let Some(row) = tx.by_fingerprint(fp, now)?
            {
                return step("existing", Some(&row.token), Ok(metadata(&row, true)));
            }
            // A numeric token can collide with an earlier one: draw again.
            for _ in 0..16 {
                let (token, id) = match config.format {
                    TokenFormat::Opaque => token::opaque(rng)?,
                    TokenFormat::Numeric => {
                        let t = token::numeric(pan, rng)?;
                        let id = token_id(&t)?;
                        (t, id)
                    }
                };
                let numeric = config.format == TokenFormat::Numeric;
                let context = crypto::record_context(expires_at, &last4, digits.len() as u8, numeric);
                let sealed = crypto::seal(pan, id, &context, kek, rng)?;
                let row = Row {
                    token,
                    kek_version: kek.version(),
                    wrapped_key: sealed.wrapped_key,
                    ciphertext: sealed.ciphertext,
                    fingerprint: fingerprint.clone(),
                    brand: brand.clone(),
                    last4: last4.clone(),
                    digits: digits.len() as u8,
                    created_at: now,
                    expires_at,
                };
                if tx.insert(&row)? {
                    return step("ok", Some(&row.token), Ok(metadata(&row, false)));
                }
            }
            step("error: no free token", None, Err(StoreError("no free token after 16 draws".into()).into()))
        })
    }

    fn metadata(&mut self, token: &str, actor: &str) -> Result<Metadata, VaultError> {
        let valid = token::validate(token);
        self.audited(actor, "metadata", |tx, _, _, now| {
            if let Err(e) = &valid {
                return step(REFUSED, None, Err(e.clone().into()));
            }
            match tx.get(token)? {
                None => step("not_found", Some(token), Err(VaultError::NotFound)),
                Some(row) if row.expires_at <= now => step("expired", Some(token), Err(VaultError::Expired)),
                Some(row) => step("ok", Some(token), Ok(metadata(&row, false))),
            }
        })
    }

    fn detokenize(&mut self, token: &str, actor: &str) -> Result<Pan, VaultError> {
        let id = token::validate(token).and_then(|()| token_id(token));
        self.audited(actor, "detokenize", |tx, keys, _, now| {
            let t = Some(token);
            let id = match &id {
                Ok(id) => *id,
                Err(e) => return step(REFUSED, None, Err(e.clone().into())),
            };
            match tx.get(token)? {
                None => step("not_found", t, Err(VaultError::NotFound)),
                Some(row) if row.expires_at <= now => step("expired", t, Err(VaultError::Expired)),
                Some(row) => match keys.get(row.kek_version) {
                    None => {
                        step("error: key version not loaded", t, Err(VaultError::UnknownKekVersion(row.kek_version)))
                    }
                    Some(kek) => {
                        let context = context_of(&row);
                        let sealed = Sealed {
                            token_id: id,
                            kek_version: row.kek_version,
                            wrapped_key: row.wrapped_key,
                            ciphertext: row.ciphertext,
                        };
                        match crypto::open(&sealed, &context, kek) {
                            Ok(pan) => step("ok", t, Ok(pan)),
                            Err(e) => step("error: record does not open", t, Err(e.into())),
                        }
                    }
                },
            }
        })
    }

    fn delete(&mut self, token: &str, actor: &str) -> Result<(), VaultError> {
        let valid = token::validate(token);
        self.audited(actor, "delete", |tx, _, _, _| {
            if let Err(e) = &valid {
                return step(REFUSED, None, Err(e.clone().into()));
            }
            if tx.delete(token)? {
                step("ok", Some(token), Ok(()))
            } else {
                step("not_found", Some(token), Err(VaultError::NotFound))
            }
        })
    }

    fn purge(&mut self, actor: &str) -> Result<u64, VaultError> {
        self.audited(actor, "purge", |tx, _, _, now| {
            let n = tx.purge(now)?;
            step(format!("removed {n}"), None, Ok(n))
        })
    }
}
