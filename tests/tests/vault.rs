//! The vault over both stores, with one suite: tokens of both formats,
//! metadata, audited detokenize, same card → same token, TTL and purge,
//! delete, KEK rotation and wrong keys, the audit chain and its tampering,
//! and no PAN in clear in the stored bytes.

use std::sync::atomic::{AtomicI64, Ordering};

use cardveil_core::capture::{Expiry, Pan, luhn};
use cardveil_core::vault::Kek;
use cardveil_core::vault::{
    Keyring, PostgresStore, SqliteStore, Store, StoreVault, TokenFormat, Vault, VaultConfig, VaultError,
};

const T0: i64 = 1_795_824_000; // 2026-11-28
const JAN_2030: i64 = 1_893_456_000; // 2030-01-01 00:00 UTC
const MAR_2027: i64 = 1_803_859_200; // 2027-03-01 00:00 UTC

fn pan(s: &str) -> Pan {
    Pan::from_ascii(s.as_bytes()).unwrap()
}

fn keys(version: u32, byte: u8) -> Keyring {
    Keyring::new(Kek::new(version, &[byte; 32]))
}

/// Runs the suite against stores from `open` (each call opens the same
/// vault again, as after a restart), with `now` as the clock's value and
/// `tamper` running SQL on the vault behind its back.
fn suite<S: Store>(open: &dyn Fn() -> S, now: &'static AtomicI64, clock: fn() -> i64, tamper: &dyn Fn(&str)) {
    now.store(T0, Ordering::SeqCst);
    let vault = |config: VaultConfig, keys: Keyring| {
        let mut v = StoreVault::open(open(), keys, config).unwrap();
        v.set_clock(clock);
        v
    };
    let mut v = vault(VaultConfig::default(), keys(1, 7));
    let visa = pan("4111111111111111");
    let expiry = Expiry::from_ascii(b"1229").unwrap();

    // Opaque token, metadata, audited detokenize.
    let m = v.tokenize(&visa, Some(&expiry), "agent:42").unwrap();
    assert!(m.token.starts_with("tok_") && m.token.len() == 32, "{}", m.token);
    assert_eq!((m.brand.map(|b| b.name()), m.last4_str(), m.digits), (Some("visa"), "1111", 16));
    assert_eq!(m.expires_at, JAN_2030, "TTL runs to the end of the expiry month");
    assert!(!m.existing);
    assert_eq!(v.metadata(&m.token, "agent:42").unwrap().last4, *b"1111");
    assert_eq!(v.detokenize(&m.token, "payments").unwrap().expose(), visa.expose());
    // A second tokenization of the same card is a new token by default.
    let m2 = v.tokenize(&visa, None, "agent:42").unwrap();
    assert_ne!(m2.token, m.token);
    assert_eq!(m2.expires_at, T0 + 90 * 86_400, "default TTL without an expiry");

    // Refusals: typo, unknown, bad actor, bad PAN length.
    let mut typo = m.token.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert!(matches!(v.detokenize(&typo, "payments"), Err(VaultError::Token(_))));
    let unknown = cardveil_core::vault::token::format_opaque(&[9; 16]);
    assert!(matches!(v.detokenize(&unknown, "payments"), Err(VaultError::NotFound)));
    assert!(matches!(v.detokenize(&m.token, ""), Err(VaultError::Actor)));
    assert!(matches!(v.detokenize(&m.token, "a\nb"), Err(VaultError::Actor)));
    assert!(matches!(v.tokenize(&pan("41111111111"), None, "x"), Err(VaultError::PanLength)));

    // Delete.
    v.delete(&m2.token, "agent:42").unwrap();
    assert!(matches!(v.detokenize(&m2.token, "payments"), Err(VaultError::NotFound)));
    assert!(matches!(v.delete(&m2.token, "agent:42"), Err(VaultError::NotFound)));

    // Numeric tokens, and same card → same token.
    let mut n = vault(
        VaultConfig { format: TokenFormat::Numeric, same_card_same_token: true, ..VaultConfig::default() },
        keys(1, 7),
    );
    let amex = pan("378282246310005");
    let a = n.tokenize(&amex, None, "agent:42").unwrap();
    assert_eq!(a.token.len(), 15);
    assert!(a.token.ends_with("0005") && a.token.starts_with('9'));
    assert!(!luhn(&a.token.bytes().map(|b| b - b'0').collect::<Vec<_>>()));
    let again = n.tokenize(&amex, None, "agent:43").unwrap();
    assert_eq!((again.token.as_str(), again.existing), (a.token.as_str(), true));
    assert_eq!(n.detokenize(&a.token, "payments").unwrap().expose(), amex.expose());
    assert_ne!(n.tokenize(&pan("371449635398431"), None, "agent:42").unwrap().token, a.token);

    // TTL and purge: 2027-03-01 is past the 90-day default, not past 12/29.
    now.store(MAR_2027, Ordering::SeqCst);
    assert!(matches!(n.detokenize(&a.token, "payments"), Err(VaultError::Expired)));
    assert_eq!(v.detokenize(&m.token, "payments").unwrap().expose(), visa.expose());
    assert_eq!(v.purge("scheduler").unwrap(), 2, "both 90-day numeric tokens");
    assert!(matches!(n.detokenize(&a.token, "payments"), Err(VaultError::NotFound)));
    // An expired fingerprint is not reused.
    let fresh = n.tokenize(&amex, None, "agent:42").unwrap();
    assert!(!fresh.existing);
    drop(n);

    // Rotation: every record rewrapped; the new key alone opens them.
    let rewrapped = v.rotate(Kek::new(2, &[8; 32]), "security").unwrap();
    assert_eq!(rewrapped, 2, "the visa token and the fresh amex token");
    drop(v);
    let mut v2 = vault(VaultConfig::default(), keys(2, 8));
    assert_eq!(v2.detokenize(&m.token, "payments").unwrap().expose(), visa.expose());
    assert_eq!(v2.detokenize(&fresh.token, "payments").unwrap().expose(), amex.expose());
    assert!(matches!(v2.rotate(Kek::new(2, &[9; 32]), "security"), Err(VaultError::KekNotNewer(2, 2))));
    // A wrong key of a known version is refused on open.
    assert!(matches!(StoreVault::open(open(), keys(2, 9), VaultConfig::default()), Err(VaultError::WrongKey(2))));
    // A version the vault never registered (only rotate registers one) is
    // refused for every operation, and refusing writes nothing: the same
    // keyring is refused again.
    for _ in 0..2 {
        let r = StoreVault::open(open(), Keyring::new(Kek::new(3, &[5; 32])), VaultConfig::default());
        assert!(matches!(r, Err(VaultError::UnregisteredKek(3))));
    }
    let mut both = keys(2, 8);
    both.add(Kek::new(3, &[5; 32]));
    assert!(matches!(StoreVault::open(open(), both, VaultConfig::default()), Err(VaultError::UnregisteredKek(3))));

    // The record's metadata is bound into its seal: an expiry pushed back
    // (an expired card revealable again), other last four digits, another
    // length — each makes the record refuse to open; put back, it opens.
    for (edit, undo) in [
        ("expires_at = expires_at + 86400", "expires_at = expires_at - 86400"),
        ("last4 = '1112'", "last4 = '1111'"),
        ("digits = 15", "digits = 16"),
    ] {
        tamper(&format!("UPDATE cardveil_tokens SET {edit} WHERE token = '{}'", m.token));
        let r = v2.detokenize(&m.token, "payments");
        assert!(matches!(r, Err(VaultError::Crypto(_))), "{edit}: {r:?}");
        tamper(&format!("UPDATE cardveil_tokens SET {undo} WHERE token = '{}'", m.token));
        assert_eq!(v2.detokenize(&m.token, "payments").unwrap().expose(), visa.expose(), "{undo}");
    }

    // Two rotations to the same version with different keys (two operators
    // at once): the second is refused, and its key registers nothing.
    let mut other = vault(VaultConfig::default(), keys(2, 8));
    assert_eq!(v2.rotate(Kek::new(3, &[6; 32]), "security").unwrap(), 2);
    assert!(matches!(other.rotate(Kek::new(3, &[4; 32]), "security"), Err(VaultError::KekVersionTaken(3))));
    drop(other);
    let mut v3keys = keys(2, 8);
    v3keys.add(Kek::new(3, &[6; 32]));
    let mut v2 = vault(VaultConfig::default(), v3keys);
    assert_eq!(v2.detokenize(&m.token, "payments").unwrap().expose(), visa.expose());
    assert!(matches!(StoreVault::open(open(), keys(3, 4), VaultConfig::default()), Err(VaultError::WrongKey(3))));

    // The audit chain holds every operation and finds tampering.
    let records = v2.verify_audit().unwrap();
    assert!(records >= 20, "{records} records");
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let batch = v2.store_mut().audit_records(after, 7).unwrap();
        let Some(last) = batch.last() else { break };
        after = last.seq;
        log.extend(batch);
    }
    assert_eq!(log.len() as u64, records);
    let ops: Vec<_> = log.iter().map(|r| (r.operation.as_str(), r.outcome.as_str())).collect();
    for want in [
        ("tokenize", "ok"),
        ("tokenize", "existing"),
        ("detokenize", "ok"),
        ("detokenize", "not_found"),
        ("detokenize", "expired"),
        ("detokenize", "refused: not a well-formed token"),
        ("delete", "ok"),
        ("purge", "removed 2"),
        ("rotate", "rewrapped 2 to KEK version 2"),
        ("rotate", "rewrapped 2 to KEK version 3"),
    ] {
        assert!(ops.contains(&want), "no {want:?} in {ops:?}");
    }
    let detok = log.iter().find(|r| r.operation == "detokenize").unwrap();
    assert_eq!((detok.actor.as_str(), detok.token.as_deref()), ("payments", Some(m.token.as_str())));
    for r in &log {
        let text = format!("{r:?}");
        assert!(!text.contains("4111111111111111") && !text.contains("378282246310005"), "{text}");
    }
    tamper("UPDATE cardveil_audit SET outcome = 'not_found' WHERE seq = 3");
    assert!(matches!(v2.verify_audit(), Err(VaultError::AuditBroken { seq: 3, .. })));
    tamper(&format!("UPDATE cardveil_audit SET outcome = '{}' WHERE seq = 3", log[2].outcome));
    assert_eq!(v2.verify_audit().unwrap(), records);
    // The head an operator exports and keeps elsewhere.
    let exported = v2.audit_head().unwrap();
    assert_eq!(exported.0, records);
    assert_eq!(v2.verify_audit_against(Some(exported)).unwrap(), records);
    // Whoever can only write the database cannot forge a record: the tags
    // are keyed (a plain SHA-256 chain rebuilt over an edit does not verify;
    // see audit's unit test), and an edit with the tag left is found.
    tamper("UPDATE cardveil_audit SET token = NULL WHERE seq = 4");
    assert!(matches!(v2.verify_audit(), Err(VaultError::AuditBroken { seq: 4, .. })));
    tamper(&format!("UPDATE cardveil_audit SET token = {} WHERE seq = 4", sql_text(log[3].token.as_deref())));
    assert_eq!(v2.verify_audit().unwrap(), records);
    tamper("DELETE FROM cardveil_audit WHERE seq = 5");
    assert!(matches!(v2.verify_audit(), Err(VaultError::AuditBroken { seq: 5, .. })));
    tamper("DELETE FROM cardveil_audit WHERE seq >= 5");
    assert!(matches!(v2.verify_audit(), Err(VaultError::AuditBroken { seq: 5, .. })), "cut tail");
    // A cut tail with the stored head rewritten to the last record left
    // looks whole to the vault alone; the exported head finds it.
    let (seq4, tag4) = (log[3].seq, log[3].hash);
    // The stored head, as the schema keeps it: seq (8 bytes, big endian) ‖ hash.
    let head = [seq4.to_be_bytes().as_slice(), &tag4].concat();
    v2.store_mut().transaction(&mut |tx| tx.meta_put("audit_head", &head).map_err(Into::into)).unwrap();
    assert_eq!(v2.verify_audit().unwrap(), 4);
    assert!(matches!(v2.verify_audit_against(Some(exported)), Err(VaultError::AuditBroken { seq: 5, .. })));
}

/// `value` as an SQL literal (text, or NULL).
fn sql_text(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| format!("'{}'", v.replace('\'', "''")))
}

fn pan_bytes_absent(hay: &[u8], pans: &[&str]) {
    for p in pans {
        let digits: Vec<u8> = p.bytes().map(|b| b - b'0').collect();
        assert!(
            !hay.windows(p.len()).any(|w| w == p.as_bytes() || w == digits.as_slice()),
            "PAN {}… in clear",
            &p[..6]
        );
    }
}

#[test]
fn sqlite_vault() {
    static NOW: AtomicI64 = AtomicI64::new(T0);
    let dir = std::env::temp_dir().join(format!("cardveil-vault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vault.sqlite");
    let open = || SqliteStore::open(&path).unwrap();
    let tamper = |sql: &str| {
        rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    };
    suite(&open, &NOW, || NOW.load(Ordering::SeqCst), &tamper);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Nothing in the files (database, WAL) holds a PAN in clear.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096);
    pan_bytes_absent(&bytes, &["4111111111111111", "378282246310005", "371449635398431"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn postgres_vault() {
    static NOW: AtomicI64 = AtomicI64::new(T0);
    let Some(url) = cardveil_tests::pg::fresh_database("the PostgreSQL vault test") else { return };
    let open = || PostgresStore::connect(&url).unwrap();
    let tamper = |sql: &str| {
        postgres::Client::connect(&url, postgres::NoTls).unwrap().batch_execute(sql).unwrap();
    };
    suite(&open, &NOW, || NOW.load(Ordering::SeqCst), &tamper);
    // Nothing in the tables holds a PAN in clear (as the server returns them).
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut bytes = Vec::new();
    for table in ["cardveil_tokens", "cardveil_meta", "cardveil_audit"] {
        for row in c.query(&format!("SELECT t::text FROM {table} t"), &[]).unwrap() {
            bytes.extend(row.get::<_, String>(0).into_bytes());
        }
    }
    assert!(bytes.len() > 1000);
    pan_bytes_absent(&bytes, &["4111111111111111", "378282246310005", "371449635398431"]);
}

#[test]
fn postgres_writers_on_many_connections_keep_one_chain() {
    let Some(url) = cardveil_tests::pg::fresh_database("the PostgreSQL concurrency test") else { return };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut v = StoreVault::open(PostgresStore::connect(&url).unwrap(), keys(1, 5), VaultConfig::default())
                    .unwrap();
                (0..25)
                    .map(|i| {
                        let p = pan(&format!("{}", 4_000_000_000_000_000u64 + t * 1000 + i));
                        (v.tokenize(&p, None, &format!("writer:{t}")).unwrap().token, p)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let issued: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let mut v = StoreVault::open(PostgresStore::connect(&url).unwrap(), keys(1, 5), VaultConfig::default()).unwrap();
    for (token, p) in &issued {
        assert_eq!(v.detokenize(token, "check").unwrap().expose(), p.expose());
    }
    assert_eq!(v.verify_audit().unwrap(), 200);
}

/// A host's own vault (say, one that forwards the PAN to its payment
/// provider): tokenize only, blocking until the test lets it go.
struct HostVault {
    gate: std::sync::mpsc::Receiver<()>,
    fail: bool,
}

impl Vault for HostVault {
    fn tokenize(
        &mut self,
        pan: &Pan,
        _: Option<&Expiry>,
        _: &str,
    ) -> Result<cardveil_core::vault::Metadata, VaultError> {
        self.gate.recv().map_err(|_| VaultError::WorkerUnavailable)?;
        if self.fail {
            return Err(VaultError::Unsupported("this card (test)"));
        }
        let d = pan.expose();
        Ok(cardveil_core::vault::Metadata {
            token: format!("psp_{}", d.len()),
            brand: None,
            last4: [b'0' + d[d.len() - 4], b'0' + d[d.len() - 3], b'0' + d[d.len() - 2], b'0' + d[d.len() - 1]],
            digits: d.len() as u8,
            created_at: 0,
            expires_at: 0,
            existing: false,
        })
    }
}

fn card(pan_digits: &str, cvv: Option<&str>) -> Box<cardveil_core::capture::Card> {
    Box::new(cardveil_core::capture::Card {
        pan: Some(pan(pan_digits)),
        expiry: Some(Expiry::from_ascii(b"1229").unwrap()),
        cvv: cvv.map(|c| cardveil_core::capture::Cvv::from_ascii(c.as_bytes()).unwrap()),
    })
}

#[test]
fn the_worker_tokenizes_off_thread_holds_the_cvv_once_and_never_blocks_the_submitter() {
    use cardveil_core::vault::{Done, Worker};
    use std::time::{Duration, Instant};

    // A store vault: token, reveal, CVV single use.
    let v = StoreVault::open(SqliteStore::in_memory().unwrap(), keys(1, 3), VaultConfig::default()).unwrap();
    let w = Worker::spawn(Box::new(v), "worker-test", Duration::from_secs(30)).unwrap();
    w.submit(7, card("4111111111111111", Some("123"))).unwrap();
    let Some(Done::Token { tag: 7, metadata, cvv_held: true }) = w.wait(Duration::from_secs(10)) else {
        panic!("no token")
    };
    assert_eq!(metadata.last4_str(), "1111");
    let mut cvv = cardveil_core::capture::Cvv::default();
    assert!(w.take_cvv(&metadata.token, &mut cvv));
    assert_eq!(cvv.expose(), &[1, 2, 3]);
    assert!(!w.take_cvv(&metadata.token, &mut cvv), "the CVV is single use");
    w.submit(8, Box::new(cardveil_core::capture::Card::default())).unwrap();
    assert!(matches!(
        w.wait(Duration::from_secs(10)),
        Some(Done::Failed { tag: 8, error: VaultError::Unsupported(_) })
    ));
    drop(w);

    // A host vault that stalls: submitting never waits; a full queue refuses.
    let (open, gate) = std::sync::mpsc::channel();
    let w = Worker::spawn(Box::new(HostVault { gate, fail: false }), "worker-test", Duration::from_secs(30)).unwrap();
    let t0 = Instant::now();
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..100 {
        match w.submit(i, card("5555555555554444", None)) {
            Ok(()) => accepted += 1,
            Err(VaultError::WorkerUnavailable) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "submit blocked");
    assert!(refused > 0 && accepted >= 64, "{accepted} accepted, {refused} refused");
    for _ in 0..accepted {
        open.send(()).unwrap();
    }
    for _ in 0..accepted {
        let Some(Done::Token { metadata, cvv_held: false, .. }) = w.wait(Duration::from_secs(10)) else {
            panic!("no token")
        };
        assert_eq!((metadata.token.as_str(), metadata.last4_str()), ("psp_16", "4444"));
    }
    drop(open);
    drop(w);

    // A host vault that refuses: the error comes back, with no card data.
    let (open, gate) = std::sync::mpsc::channel();
    let w = Worker::spawn(Box::new(HostVault { gate, fail: true }), "worker-test", Duration::from_secs(30)).unwrap();
    open.send(()).unwrap();
    w.submit(1, card("4111111111111111", Some("999"))).unwrap();
    let Some(Done::Failed { tag: 1, error }) = w.wait(Duration::from_secs(10)) else { panic!("no failure") };
    assert!(!format!("{error} {error:?}").contains("4111"));
}

#[test]
fn postgres_vault_through_the_command() {
    use cardveil_cli::{Cli, run};
    use clap::Parser;
    let Some(url) = cardveil_tests::pg::fresh_database("the PostgreSQL CLI test") else { return };
    let dir = std::env::temp_dir().join(format!("cardveil-pgcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("shared.key");
    let _ = std::fs::remove_file(&key);
    cardveil_core::vault::keyfile::load_or_create(&key).unwrap();
    let input = dir.join("card.wav");
    let (pcm, _) = cardveil_cli::example::keyed(8000, "378282246310005#0729#1234#");
    let mut wav = cardveil_core::codec::wav::header(
        cardveil_core::codec::wav::WavFormat {
            encoding: cardveil_core::codec::Encoding::Ulaw,
            sample_rate: 8000,
            channels: 1,
        },
        pcm.len() as u32,
    );
    wav.extend(pcm.iter().map(|&s| cardveil_core::codec::ulaw::encode(s)));
    std::fs::write(&input, wav).unwrap();
    let cmd = |args: &[&str]| {
        let mut argv = vec!["cardveil"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--vault", &url, "--key-file", key.to_str().unwrap()]);
        let mut out = Vec::new();
        run(Cli::try_parse_from(argv).unwrap(), &mut out).map(|_| String::from_utf8(out).unwrap())
    };
    let out = cmd(&[
        "mask",
        input.to_str().unwrap(),
        "-o",
        dir.join("out.wav").to_str().unwrap(),
        "--capture",
        "pan,expiry,cvv",
    ])
    .unwrap();
    assert!(
        out.contains(r#"{"event":"field","field":"pan","status":"valid","brand":"amex","last4":"0005","digits":15}"#),
        "{out}"
    );
    let token = out.lines().find_map(|l| l.strip_prefix(r#"{"event":"token","field":"pan","token":""#)).unwrap();
    let token = token.trim_end_matches("\"}");
    assert_eq!(cmd(&["vault", "reveal", token]).unwrap(), "378282246310005\n");
    assert_eq!(cmd(&["vault", "audit", "verify"]).unwrap(), "{\"event\":\"audit\",\"status\":\"ok\",\"records\":2}\n");
    // Without a key file, a PostgreSQL vault is refused (no per-host development key).
    let argv = ["cardveil", "vault", "purge", "--vault", url.as_str()];
    let e = run(Cli::try_parse_from(argv).unwrap(), &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("needs --key-file") && !e.contains("port="), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debug_and_errors_never_show_card_data() {
    use cardveil_core::capture::{Capture, CaptureConfig, Card, Cvv};
    use cardveil_core::dtmf::Key;
    let mut capture = Capture::new(CaptureConfig::standard(8000, (2026, 11)));
    capture.begin(0);
    let mut shown = String::new();
    for (i, ch) in "4111111111111111#1229#12".chars().enumerate() {
        capture.key(Key::from_char(ch).unwrap(), i as u64 * 800);
        shown += &format!("{capture:?}\n");
        while let Some(e) = capture.poll() {
            shown += &format!("{e:?}\n");
        }
    }
    let card = Card {
        pan: Some(pan("4111111111111111")),
        expiry: Some(Expiry::from_ascii(b"1229").unwrap()),
        cvv: Some(Cvv::from_ascii(b"123").unwrap()),
    };
    shown += &format!("{card:?}\n");
    let mut v = StoreVault::open(SqliteStore::in_memory().unwrap(), keys(1, 1), VaultConfig::default()).unwrap();
    let m = v.tokenize(card.pan.as_ref().unwrap(), card.expiry.as_ref(), "agent").unwrap();
    shown += &format!("{m:?}\n{v:?}\n");
    for e in [
        v.detokenize("tok_x", "agent").unwrap_err(),
        v.detokenize(&cardveil_core::vault::token::format_opaque(&[1; 16]), "agent").unwrap_err(),
        v.tokenize(&pan("4111111111"), None, "agent").unwrap_err(),
        v.delete(&m.token, "agent").and_then(|_| v.metadata(&m.token, "agent")).unwrap_err(),
    ] {
        shown += &format!("{e} {e:?}\n");
    }
    let mut held = cardveil_core::vault::CvvHolder::new(4, std::time::Duration::from_secs(9));
    held.hold(&m.token, &mut Cvv::from_ascii(b"123").unwrap(), std::time::Instant::now());
    shown += &format!("{held:?}\n");
    assert!(shown.contains("Pan(16 digits)") && shown.contains("last4"), "{shown}");
    for secret in ["4111111111111111", "411111", "[4, 1, 1, 1", "[1, 2, 2, 9", "[1, 2, 3]"] {
        assert!(!shown.contains(secret), "{secret:?} shown in:\n{shown}");
    }
}

/// AES-256-GCM under `key`: nonce ‖ sealed ‖ tag (as the vault stores them).
fn gcm(key: &[u8; 32], aad: &[u8], plain: &[u8], nonce: [u8; 12]) -> Vec<u8> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf).unwrap();
    [nonce.as_slice(), &buf].concat()
}

/// A record sealed the way vaults did before its metadata was bound (the
/// token id alone as the PAN's associated data) opens — its metadata not yet
/// protected — and the next rotation reseals it with the metadata bound.
#[test]
fn records_sealed_before_metadata_was_bound_are_migrated_by_rotation() {
    static NOW: AtomicI64 = AtomicI64::new(T0);
    let dir = std::env::temp_dir().join(format!("cardveil-vault-legacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vault.sqlite");
    let open = |keys: Keyring| {
        let mut v = StoreVault::open(SqliteStore::open(&path).unwrap(), keys, VaultConfig::default()).unwrap();
        v.set_clock(|| NOW.load(Ordering::SeqCst));
        v
    };
    let tamper = |sql: &str| rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    let mut v = open(keys(1, 7));
    let (token, id) = cardveil_core::vault::token::opaque(&ring::rand::SystemRandom::new()).unwrap();
    let data_key = [3u8; 32];
    let digits: Vec<u8> = b"5555555555554444".iter().map(|b| b - b'0').collect();
    let wrapped_key = gcm(&[7; 32], &[id.as_slice(), &1u32.to_be_bytes()].concat(), &data_key, [1; 12]);
    let ciphertext = gcm(&data_key, &id, &digits, [2; 12]);
    // Written behind the vault's back, as an older build stored it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO cardveil_tokens (token, kek_version, wrapped_key, ciphertext, fingerprint, brand, last4, \
             digits, created_at, expires_at) VALUES (?1, 1, ?2, ?3, NULL, 'mastercard', '4444', 16, ?4, ?5)",
            rusqlite::params![token, wrapped_key, ciphertext, T0, T0 + 86_400],
        )
        .unwrap();
    assert_eq!(v.detokenize(&token, "payments").unwrap().expose(), digits.as_slice());
    // Its expiry can still be moved unnoticed: the seal does not cover it yet.
    tamper(&format!("UPDATE cardveil_tokens SET expires_at = expires_at + 1 WHERE token = '{token}'"));
    assert!(v.detokenize(&token, "payments").is_ok());
    tamper(&format!("UPDATE cardveil_tokens SET expires_at = expires_at - 1 WHERE token = '{token}'"));
    // Rotation reseals it with its metadata bound.
    assert_eq!(v.rotate(Kek::new(2, &[8; 32]), "security").unwrap(), 1);
    let stored: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT ciphertext FROM cardveil_tokens WHERE token = ?1", [&token], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, ciphertext, "a new seal");
    drop(v);
    let mut both = keys(1, 7);
    both.add(Kek::new(2, &[8; 32]));
    let mut v = open(both);
    assert_eq!(v.detokenize(&token, "payments").unwrap().expose(), digits.as_slice());
    tamper(&format!("UPDATE cardveil_tokens SET expires_at = expires_at + 1 WHERE token = '{token}'"));
    assert!(matches!(v.detokenize(&token, "payments"), Err(VaultError::Crypto(_))), "now bound");
    // Two reveals, the rotation, a reveal, a refused one.
    assert_eq!(v.verify_audit().unwrap(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}
