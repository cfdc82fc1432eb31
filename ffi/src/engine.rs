//! `cardveil_engine`: the settings and the vault shared by many calls and
//! threads. Ownership: reference-counted (an `Arc` inside); every call holds
//! a reference, so `cardveil_engine_free` may come before the calls' own
//! `_free` — the engine goes when the last of them does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{CStr, c_char, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cardveil_core::capture::{Brand, Card, Expiry, PAN_DIGITS, Pan, last_four};
use cardveil_core::codec::Encoding;
use cardveil_core::dtmf::Profile;
use cardveil_core::mask::{MaskMode, MaskerConfig};
use cardveil_core::vault::Kek;
use cardveil_core::vault::{
    self, CVV_HOLD, Done, KeySource, Location, Metadata, OpenError, TokenFormat, Vault, VaultConfig, VaultError,
    Worker, check_actor,
};
use zeroize::Zeroizing;

use crate::handle::ArcHandle;
use crate::result::*;

/// Sample encodings.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_encoding {
    /// Signed 16-bit linear PCM (native endianness), 8, 16 or 48 kHz.
    CARDVEIL_ENCODING_PCM16 = 0,
    /// G.711 μ-law, 8 kHz.
    CARDVEIL_ENCODING_ULAW = 1,
    /// G.711 A-law, 8 kHz.
    CARDVEIL_ENCODING_ALAW = 2,
}

/// What replaces a masked key press.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_mask_mode {
    /// Digital silence.
    CARDVEIL_MASK_SILENCE = 0,
    /// Comfort noise at the level of the surrounding audio.
    CARDVEIL_MASK_NOISE = 1,
    /// One flat 500 Hz tone at -20 dBm0, the same for every key.
    CARDVEIL_MASK_TONE = 2,
}

/// Which DTMF standard decides the digits reported.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_profile {
    /// ITU-T Q.24 (the default).
    CARDVEIL_PROFILE_Q24 = 0,
    /// ETSI ES 201 235-3.
    CARDVEIL_PROFILE_ETSI = 1,
    /// NTT.
    CARDVEIL_PROFILE_NTT = 2,
}

/// Where tokens are kept.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_vault_kind {
    /// No vault: captures complete and the card is wiped; no token.
    CARDVEIL_VAULT_NONE = 0,
    /// A SQLite file at `vault_location` (created if missing).
    CARDVEIL_VAULT_SQLITE = 1,
    /// A PostgreSQL server; `vault_location` is a libpq-style string or URL.
    CARDVEIL_VAULT_POSTGRES = 2,
    /// The host's own function (`host_tokenize`), e.g. straight to its payment provider.
    CARDVEIL_VAULT_HOST = 3,
}

/// Token format for SQLite and PostgreSQL vaults.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cardveil_token_format {
    /// `tok_` + 128 random bits + check characters.
    CARDVEIL_TOKEN_OPAQUE = 0,
    /// As long as the PAN, last four kept, fails Luhn.
    CARDVEIL_TOKEN_NUMERIC = 1,
}

/// The host's tokenize function (CARDVEIL_VAULT_HOST). Called on the
/// engine's worker thread, never on an audio thread, one call at a time.
/// `pan` holds `pan_len` ASCII digits and `expiry` `expiry_len` (MMYY, or
/// 0 if not captured); neither is NUL-terminated, and both are wiped when
/// the function returns: copy nothing you do not send. Write a
/// NUL-terminated token of at most `token_cap - 1` bytes to `token_out` and
/// return 0, or return non-zero to refuse (the card is wiped).
pub type cardveil_tokenize_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        pan: *const u8,
        pan_len: usize,
        expiry: *const u8,
        expiry_len: usize,
        token_out: *mut c_char,
        token_cap: usize,
    ) -> i32,
>;

/// Engine settings. Start from `cardveil_engine_config_default`, then set
/// what differs. All strings are NUL-terminated and copied; the config may
/// be freed after `cardveil_engine_new`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cardveil_engine_config {
    /// 8000, 16000 or 48000 (G.711: 8000).
    pub sample_rate: u32,
    /// A `cardveil_encoding`.
    pub encoding: u32,
    /// Look-ahead in ms, 0-200 (default 20; 18 or more masks from 2 ms before each tone).
    pub lookahead_ms: u32,
    /// A `cardveil_mask_mode`.
    pub mask_mode: u32,
    /// A `cardveil_profile`.
    pub profile: u32,
    /// A `cardveil_vault_kind`.
    pub vault_kind: u32,
    /// SQLite path or PostgreSQL connection string (NULL for NONE and HOST).
    pub vault_location: *const c_char,
    /// The key-encryption key, 32 bytes from the host's key store; NULL to
    /// use `key_file` instead.
    pub kek: *const u8,
    /// Length of `kek` (32).
    pub kek_len: usize,
    /// Version of `kek` (1 or more).
    pub kek_version: u32,
    /// A development key file (created, mode 0600, if missing and the vault
    /// is SQLite); used when `kek` is NULL. NULL with a SQLite vault means
    /// `vault_location` + ".key".
    pub key_file: *const c_char,
    /// A `cardveil_token_format`.
    pub token_format: u32,
    /// Non-zero: the same PAN gets the same (unexpired) token.
    pub same_card_same_token: u32,
    /// CARDVEIL_VAULT_HOST: the tokenize function.
    pub host_tokenize: cardveil_tokenize_fn,
    /// CARDVEIL_VAULT_HOST: passed to `host_tokenize`. It must be usable from the worker
    /// thread and stay valid until the engine's last reference is released (queued cards
    /// are still tokenized then).
    pub host_user: *mut c_void,
    /// Who the audit trail names for captures of this engine (NULL: "cardveil").
    pub actor: *const c_char,
    /// Non-zero: calls use the two-phase API (`cardveil_call_analyse_*` on
    /// packet arrival, `cardveil_call_mask_*` at playout) and `lookahead_ms`
    /// is the host's jitter-buffer depth; zero: the delay line
    /// (`cardveil_call_process_*`).
    pub two_phase: u32,
}

/// The defaults: 8 kHz PCM16, 20 ms look-ahead, silence, Q.24, no vault.
#[unsafe(no_mangle)]
pub extern "C" fn cardveil_engine_config_default() -> cardveil_engine_config {
    cardveil_engine_config {
        sample_rate: 8000,
        encoding: cardveil_encoding::CARDVEIL_ENCODING_PCM16 as u32,
        lookahead_ms: cardveil_core::mask::DEFAULT_LOOKAHEAD_MS,
        mask_mode: cardveil_mask_mode::CARDVEIL_MASK_SILENCE as u32,
        profile: cardveil_profile::CARDVEIL_PROFILE_Q24 as u32,
        vault_kind: cardveil_vault_kind::CARDVEIL_VAULT_NONE as u32,
        vault_location: std::ptr::null(),
        kek: std::ptr::null(),
        kek_len: 0,
        kek_version: 1,
        key_file: std::ptr::null(),
        token_format: cardveil_token_format::CARDVEIL_TOKEN_OPAQUE as u32,
        same_card_same_token: 0,
        host_tokenize: None,
        host_user: std::ptr::null_mut(),
        actor: std::ptr::null(),
        two_phase: 0,
    }
}

/// An engine. Opaque; see `cardveil_engine_new`.
#[derive(Debug)]
pub struct cardveil_engine {
    _private: [u8; 0],
}

impl ArcHandle for cardveil_engine {
    type Rust = EngineInner;
}

/// Results of the worker, routed to calls by id.
pub(crate) struct Tokens {
    worker: Worker,
    waiting: HashMap<u64, VecDeque<Done>>,
    /// Calls not yet freed: a result for a call freed while its card was
    /// being tokenized is dropped, not kept forever.
    live: HashSet<u64>,
}

pub(crate) struct EngineInner {
    pub(crate) masker: MaskerConfig,
    pub(crate) two_phase: bool,
    pub(crate) tokens: Option<Mutex<Tokens>>,
    next_call: AtomicU64,
    pub(crate) poisoned: AtomicBool,
}

impl EngineInner {
    /// A new call's id (registered for the worker's results).
    pub(crate) fn next_call_id(&self) -> u64 {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &self.tokens {
            t.lock().unwrap_or_else(PoisonError::into_inner).live.insert(id);
        }
        id
    }

    /// Hands a card to the worker (event thread, never audio).
    pub(crate) fn submit(&self, call: u64, card: Box<Card>) -> cardveil_result {
        let Some(t) = &self.tokens else { return CARDVEIL_NO_VAULT };
        let t = t.lock().unwrap_or_else(PoisonError::into_inner);
        match t.worker.submit(call, card) {
            Ok(()) => CARDVEIL_OK,
            Err(_) => CARDVEIL_WORKER_BUSY,
        }
    }

    /// The next worker result for `call`, if any.
    pub(crate) fn take_done(&self, call: u64) -> Option<Done> {
        let mut t = self.tokens.as_ref()?.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(d) = t.worker.poll() {
            let id = match &d {
                Done::Token { tag, .. } | Done::Failed { tag, .. } => *tag,
                _ => continue,
            };
            if t.live.contains(&id) {
                t.waiting.entry(id).or_default().push_back(d);
            }
        }
        let q = t.waiting.get_mut(&call)?;
        let d = q.pop_front();
        if q.is_empty() {
            t.waiting.remove(&call);
        }
        d
    }

    /// The CVV held for `token` by the worker, once (control thread).
    pub(crate) fn take_cvv(&self, token: &str, out: &mut cardveil_core::capture::Cvv) -> bool {
        let Some(t) = &self.tokens else { return false };
        t.lock().unwrap_or_else(PoisonError::into_inner).worker.take_cvv(token, out)
    }

    /// Forgets a call that is gone, and its results, now and later.
    pub(crate) fn forget(&self, call: u64) {
        if let Some(t) = &self.tokens {
            let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
            t.waiting.remove(&call);
            t.live.remove(&call);
        }
    }

    /// Results waiting for calls (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.tokens.as_ref().map_or(0, |t| t.lock().unwrap_or_else(PoisonError::into_inner).waiting.len())
    }
}

/// The host's tokenize function as a `Vault`.
struct HostVault {
    f: unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize, *mut c_char, usize) -> i32,
    user: SendPtr,
}

struct SendPtr(*mut c_void);
// SAFETY: the host promises (header docs of `host_user`) that its pointer may
// be used from the worker thread; cardveil only passes it back to the host.
unsafe impl Send for SendPtr {}

const HOST_TOKEN_CAP: usize = 256;

impl Vault for HostVault {
    fn tokenize(&mut self, pan: &Pan, expiry: Option<&Expiry>, _actor: &str) -> Result<Metadata, VaultError> {
        let d = pan.expose();
        let last4 = last_four(d).filter(|_| PAN_DIGITS.contains(&d.len())).ok_or(VaultError::PanLength)?;
        let mut ascii = Zeroizing::new([0u8; 19]);
        for (a, &x) in ascii.iter_mut().zip(d) {
            *a = b'0' + x;
        }
        let mut exp = Zeroizing::new([0u8; 4]);
        let exp_len = expiry.map_or(0, |e| {
            for (a, &x) in exp.iter_mut().zip(e.expose()) {
                *a = b'0' + x;
            }
            e.len()
        });
        let mut out = [0 as c_char; HOST_TOKEN_CAP];
        // SAFETY: the pointers are valid for the lengths given for the whole
        // call; `out` has HOST_TOKEN_CAP bytes; the host's function follows
        // the documented contract.
        let rc = unsafe {
            (self.f)(self.user.0, ascii.as_ptr(), d.len(), exp.as_ptr(), exp_len, out.as_mut_ptr(), out.len())
        };
        if rc != 0 {
            return Err(VaultError::Unsupported("this card (the host's tokenize refused it)"));
        }
        let n =
            out.iter().position(|&c| c == 0).ok_or(VaultError::Unsupported("a token without a NUL (host tokenize)"))?;
        let bytes: Vec<u8> = out[..n].iter().map(|&c| c as u8).collect();
        let token = String::from_utf8(bytes)
            .map_err(|_| VaultError::Unsupported("a token that is not UTF-8 (host tokenize)"))?;
        Ok(Metadata {
            token,
            brand: Brand::of(d),
            last4,
            digits: d.len() as u8,
            created_at: cardveil_core::vault::now(),
            expires_at: 0,
            existing: false,
        })
    }
}

/// A NUL-terminated string argument, or None for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn opt_str<'a>(p: *const c_char) -> Result<Option<&'a str>, cardveil_result> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map(Some).map_err(|_| CARDVEIL_INVALID_ARGUMENT)
}

fn enum_value<T: Copy>(v: u32, all: &[T]) -> Result<T, cardveil_result> {
    all.get(v as usize).copied().ok_or(CARDVEIL_INVALID_ARGUMENT)
}

/// Opens the SQLite or PostgreSQL vault at `location` with the config's
/// keys: its KEK if given, else its key file — for SQLite by default the
/// vault's path + `.key`, created if missing (a development key); a
/// PostgreSQL vault needs the KEK or a key file given.
fn open_vault(
    c: &cardveil_engine_config,
    location: Location<'_>,
    config: VaultConfig,
) -> Result<Box<dyn Vault>, cardveil_result> {
    // SAFETY: documented as NULL or a NUL-terminated string.
    let key_file = unsafe { opt_str(c.key_file) }?.map(PathBuf::from).or_else(|| location.default_key_file());
    let keys = if !c.kek.is_null() {
        if c.kek_len != 32 || c.kek_version == 0 {
            return Err(CARDVEIL_INVALID_ARGUMENT);
        }
        let mut m = Zeroizing::new([0u8; 32]);
        // SAFETY: the config says `kek` points to `kek_len` (32) bytes.
        m.copy_from_slice(unsafe { std::slice::from_raw_parts(c.kek, 32) });
        KeySource::Kek(Box::new(Kek::new(c.kek_version, &m)))
    } else {
        let file = key_file.as_deref().ok_or(CARDVEIL_INVALID_ARGUMENT)?;
        match location {
            Location::Sqlite(_) => KeySource::FileOrCreate(file),
            Location::Postgres(_) => KeySource::File(file),
        }
    };
    match vault::open(location, keys, config) {
        Ok(opened) => Ok(opened.vault.into_boxed()),
        // Built without this store: the vault kind is refused.
        Err(OpenError::Store(VaultError::Unsupported(_))) => Err(CARDVEIL_INVALID_ARGUMENT),
        Err(_) => Err(CARDVEIL_VAULT_ERROR),
    }
}

fn build(c: &cardveil_engine_config) -> Result<EngineInner, cardveil_result> {
    use cardveil_encoding::*;
    use cardveil_mask_mode::*;
    use cardveil_profile::*;
    use cardveil_vault_kind::*;
    let encoding =
        match enum_value(c.encoding, &[CARDVEIL_ENCODING_PCM16, CARDVEIL_ENCODING_ULAW, CARDVEIL_ENCODING_ALAW])? {
            CARDVEIL_ENCODING_PCM16 => Encoding::Pcm16,
            CARDVEIL_ENCODING_ULAW => Encoding::Ulaw,
            CARDVEIL_ENCODING_ALAW => Encoding::Alaw,
        };
    let mode = match enum_value(c.mask_mode, &[CARDVEIL_MASK_SILENCE, CARDVEIL_MASK_NOISE, CARDVEIL_MASK_TONE])? {
        CARDVEIL_MASK_SILENCE => MaskMode::Silence,
        CARDVEIL_MASK_NOISE => MaskMode::Noise,
        CARDVEIL_MASK_TONE => MaskMode::Tone,
    };
    let profile = match enum_value(c.profile, &[CARDVEIL_PROFILE_Q24, CARDVEIL_PROFILE_ETSI, CARDVEIL_PROFILE_NTT])? {
        CARDVEIL_PROFILE_Q24 => Profile::Q24,
        CARDVEIL_PROFILE_ETSI => Profile::Etsi,
        CARDVEIL_PROFILE_NTT => Profile::Ntt,
    };
    let masker = MaskerConfig { sample_rate: c.sample_rate, encoding, lookahead_ms: c.lookahead_ms, mode, profile };
    masker.validate().map_err(|_| CARDVEIL_INVALID_ARGUMENT)?;
    let format = match c.token_format {
        0 => TokenFormat::Opaque,
        1 => TokenFormat::Numeric,
        _ => return Err(CARDVEIL_INVALID_ARGUMENT),
    };
    let vault_config =
        VaultConfig { format, same_card_same_token: c.same_card_same_token != 0, ..VaultConfig::default() };
    // SAFETY: documented as NULL or NUL-terminated strings.
    let (location, actor) = unsafe { (opt_str(c.vault_location)?, opt_str(c.actor)?) };
    let actor = actor.unwrap_or("cardveil");
    check_actor(actor).map_err(|_| CARDVEIL_INVALID_ARGUMENT)?;
    let vault: Option<Box<dyn Vault>> = match enum_value(
        c.vault_kind,
        &[CARDVEIL_VAULT_NONE, CARDVEIL_VAULT_SQLITE, CARDVEIL_VAULT_POSTGRES, CARDVEIL_VAULT_HOST],
    )? {
        CARDVEIL_VAULT_NONE => None,
        CARDVEIL_VAULT_SQLITE => {
            let path = location.ok_or(CARDVEIL_NULL_ARGUMENT)?;
            Some(open_vault(c, Location::Sqlite(path.as_ref()), vault_config)?)
        }
        CARDVEIL_VAULT_POSTGRES => {
            let url = location.ok_or(CARDVEIL_NULL_ARGUMENT)?;
            Some(open_vault(c, Location::Postgres(url), vault_config)?)
        }
        CARDVEIL_VAULT_HOST => {
            let f = c.host_tokenize.ok_or(CARDVEIL_NULL_ARGUMENT)?;
            Some(Box::new(HostVault { f, user: SendPtr(c.host_user) }))
        }
    };
    let tokens = match vault {
        None => None,
        Some(v) => {
            let worker = Worker::spawn(v, actor, CVV_HOLD).map_err(|_| CARDVEIL_VAULT_ERROR)?;
            Some(Mutex::new(Tokens { worker, waiting: HashMap::new(), live: HashSet::new() }))
        }
    };
    Ok(EngineInner {
        masker,
        two_phase: c.two_phase != 0,
        tokens,
        next_call: AtomicU64::new(1),
        poisoned: AtomicBool::new(false),
    })
}

/// Creates an engine from `config` and writes it to `*engine_out` (only on
/// success). Opening a SQLite or PostgreSQL vault happens here (it may
/// take a while: do it at start-up, not on an audio thread).
///
/// Thread safety: engines are shared; calls of different threads may use
/// one engine at once.
///
/// # Safety
/// `config` points to a valid config whose strings are NULL or
/// NUL-terminated; `engine_out` points to writable memory for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_engine_new(
    config: *const cardveil_engine_config,
    engine_out: *mut *mut cardveil_engine,
) -> cardveil_result {
    guard(None, || {
        if config.is_null() || engine_out.is_null() {
            return CARDVEIL_NULL_ARGUMENT;
        }
        // SAFETY: checked non-NULL; the caller guarantees a valid config.
        let c = unsafe { *config };
        match build(&c) {
            Ok(inner) => {
                let p = cardveil_engine::into_raw(Arc::new(inner));
                // SAFETY: checked non-NULL; the caller guarantees it is writable.
                unsafe { engine_out.write(p) };
                CARDVEIL_OK
            }
            Err(r) => r,
        }
    })
}

/// Releases the caller's reference to an engine. Calls made from it keep
/// it alive until they are freed. Releasing the last reference finishes the
/// cards still queued for tokenization and stops the worker, so it may wait
/// for the vault: not on an audio thread. NULL is a no-op.
///
/// # Safety
/// `engine` is NULL or a pointer from `cardveil_engine_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cardveil_engine_free(engine: *mut cardveil_engine) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: NULL, or from cardveil_engine_new and released once (the
        // caller's contract).
        unsafe { cardveil_engine::release(engine) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn tokenize(
        _: *mut c_void,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        out: *mut c_char,
        cap: usize,
    ) -> i32 {
        assert!(cap >= 2);
        // SAFETY: `out` has `cap` >= 2 writable bytes.
        unsafe {
            out.write(b't' as c_char);
            out.add(1).write(0);
        }
        0
    }

    fn card() -> Box<Card> {
        Box::new(Card { pan: Pan::from_ascii(b"4111111111111111"), expiry: None, cvv: None })
    }

    #[test]
    fn results_for_a_freed_call_are_dropped_not_kept() {
        let config = cardveil_engine_config {
            vault_kind: cardveil_vault_kind::CARDVEIL_VAULT_HOST as u32,
            host_tokenize: Some(tokenize),
            ..cardveil_engine_config_default()
        };
        let Ok(e) = build(&config) else { panic!("engine") };
        let (a, b) = (e.next_call_id(), e.next_call_id());
        assert_eq!(e.submit(a, card()), CARDVEIL_OK);
        e.forget(a); // call `a` freed while its card is being tokenized
        assert_eq!(e.submit(b, card()), CARDVEIL_OK);
        let mut got = None;
        for _ in 0..2000 {
            got = e.take_done(b);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(matches!(got, Some(Done::Token { tag, .. }) if tag == b));
        assert_eq!(e.waiting(), 0, "the freed call's token was kept");
        assert!(e.take_done(a).is_none());
    }
}
