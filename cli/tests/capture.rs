//! `cardveil mask --capture` and `cardveil vault` end to end: keyed cards
//! of every brand, in PCM16 and G.711, captured, tokenized and revealed;
//! the vault operations and their errors; and a scan of everything the
//! commands printed (reveal aside) for card numbers.

mod common;

use std::path::Path;
use std::process::Output;

use common::{bin, field, lines, write_wav};

use cardveil_cli::example::keyed;
use cardveil_core::capture::luhn;
use cardveil_core::codec::Encoding;

/// (brand, PAN, expiry MMYY, CVV): a standard test number of every brand.
const CARDS: [(&str, &str, &str, &str); 10] = [
    ("visa", "4111111111111111", "1229", "123"),
    ("visa", "4222222222222", "0631", "456"),
    ("mastercard", "5555555555554444", "0130", "789"),
    ("mastercard", "2223003122003222", "1128", "321"),
    ("amex", "378282246310005", "0729", "1234"),
    ("discover", "6011111111111117", "0330", "654"),
    ("diners", "36227206271667", "0929", "987"),
    ("jcb", "3530111333300000", "0232", "111"),
    ("unionpay", "6200000000000005", "0528", "222"),
    ("maestro", "6759649826438453", "0829", "333"),
];

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("capture", name)
}

/// Everything a command printed, kept for the card-number scan.
#[derive(Default)]
struct Printed(Vec<u8>);

impl Printed {
    fn keep(&mut self, out: &Output) {
        lines(out); // every line is JSON
        self.0.extend_from_slice(&out.stdout);
        self.0.extend_from_slice(&out.stderr);
    }

    /// No 13–19 digit run that passes Luhn, and none of the test PANs.
    fn assert_no_card_numbers(&self) {
        let text = String::from_utf8_lossy(&self.0);
        for (_, pan, ..) in CARDS {
            assert!(!text.contains(pan), "a PAN was printed");
        }
        for run in text.split(|c: char| !c.is_ascii_digit()) {
            for len in 13..=19.min(run.len()) {
                for w in run.as_bytes().windows(len) {
                    let d: Vec<u8> = w.iter().map(|b| b - b'0').collect();
                    assert!(!luhn(&d), "a Luhn-valid digit run of {len} was printed");
                }
            }
        }
    }
}

fn capture(input: &Path, vault: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("mask")
        .arg(input)
        .arg("-o")
        .arg(input.with_extension("masked.wav"))
        .args(["--capture", "pan,expiry,cvv", "--vault"])
        .arg(vault)
        .args(extra)
        .output()
        .unwrap()
}

fn vault_cmd(vault: &Path, args: &[&str]) -> Output {
    bin().arg("vault").args(args).arg("--vault").arg(vault).output().unwrap()
}

fn token_of(out: &Output) -> String {
    let l = lines(out);
    let t = l.iter().find(|l| l.starts_with(r#"{"event":"token""#)).unwrap_or_else(|| panic!("no token in {l:?}"));
    field(t, "token").unwrap().trim_matches('"').to_owned()
}

#[test]
fn every_brand_in_every_encoding_is_captured_tokenized_and_revealed() {
    let vault = tmp("brands.sqlite");
    let _ = std::fs::remove_file(&vault);
    let mut printed = Printed::default();
    let mut tokens = Vec::new();
    for (encoding, rate) in
        [(Encoding::Pcm16, 8000), (Encoding::Ulaw, 8000), (Encoding::Alaw, 8000), (Encoding::Pcm16, 16000)]
    {
        for (i, (brand, pan, expiry, cvv)) in CARDS.iter().enumerate() {
            let (pcm, _) = keyed(rate, &format!("{pan}#{expiry}#{cvv}#"));
            let input = tmp(&format!("card{i}-{encoding:?}-{rate}.wav"));
            write_wav(&input, encoding, rate, &[pcm]);
            let out = capture(&input, &vault, &[]);
            printed.keep(&out);
            assert!(out.status.success(), "{brand} {encoding:?}: {}", String::from_utf8_lossy(&out.stderr));
            let l = lines(&out);
            let want_pan = format!(
                r#"{{"event":"field","field":"pan","status":"valid","brand":"{brand}","last4":"{}","digits":{}}}"#,
                &pan[pan.len() - 4..],
                pan.len()
            );
            assert!(l.contains(&want_pan), "{brand} {encoding:?}: no {want_pan} in {l:?}");
            assert!(l.contains(&r#"{"event":"field","field":"expiry","status":"valid","digits":4}"#.to_owned()));
            let want_cvv = format!(r#"{{"event":"field","field":"cvv","status":"valid","digits":{}}}"#, cvv.len());
            assert!(l.contains(&want_cvv), "{l:?}");
            let complete = l.iter().position(|l| l == r#"{"event":"capture","status":"complete"}"#).expect("complete");
            assert!(l[complete + 1].starts_with(r#"{"event":"token","field":"pan","token":"tok_"#), "{l:?}");
            tokens.push((token_of(&out), *pan));
        }
    }
    for (token, pan) in &tokens {
        let out = vault_cmd(&vault, &["reveal", token]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{pan}\n"));
    }
    let out = vault_cmd(&vault, &["audit", "verify"]);
    printed.keep(&out);
    assert_eq!(lines(&out), vec![format!(r#"{{"event":"audit","status":"ok","records":{}}}"#, tokens.len() * 2)]);
    printed.assert_no_card_numbers();
    // The vault's files hold no PAN in clear.
    let mut stored = Vec::new();
    for suffix in ["", "-wal", ".key"] {
        let mut p = vault.clone().into_os_string();
        p.push(suffix);
        stored.extend(std::fs::read(p).unwrap_or_default());
    }
    for (_, pan, ..) in CARDS {
        let digits: Vec<u8> = pan.bytes().map(|b| b - b'0').collect();
        assert!(
            !stored.windows(pan.len()).any(|w| w == pan.as_bytes() || w == digits.as_slice()),
            "a PAN is in the vault in clear"
        );
    }
}

#[test]
fn invalid_fields_retry_and_stereo_channels_capture_apart() {
    let vault = tmp("stereo.sqlite");
    let _ = std::fs::remove_file(&vault);
    // Caller: a Luhn typo, then the right number. Agent: an unknown brand, twice, then gives up.
    let (caller, _) = keyed(8000, "4111111111111112#4111111111111111#1229#123#");
    let (agent, _) = keyed(8000, "9999#9999#9999#9999#");
    let n = caller.len().max(agent.len());
    let pad = |mut v: Vec<i16>| {
        v.resize(n, 0);
        v
    };
    let input = tmp("stereo.wav");
    write_wav(&input, Encoding::Ulaw, 8000, &[pad(caller), pad(agent)]);
    let out = capture(&input, &vault, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = lines(&out);
    let has = |s: &str| l.iter().any(|x| x == s);
    assert!(
        has(r#"{"event":"field","field":"pan","status":"invalid","reason":"luhn","retries_left":2,"channel":0}"#),
        "{l:?}"
    );
    assert!(has(
        r#"{"event":"field","field":"pan","status":"valid","brand":"visa","last4":"1111","digits":16,"channel":0}"#
    ));
    assert!(has(
        r#"{"event":"field","field":"pan","status":"invalid","reason":"unknown_brand","retries_left":0,"channel":1}"#
    ));
    assert!(has(r#"{"event":"capture","status":"failed","field":"pan","channel":1}"#), "{l:?}");
    let token = l.iter().find(|x| x.starts_with(r#"{"event":"token""#)).unwrap();
    assert!(token.ends_with(r#","channel":0}"#), "{token}");
    assert_eq!(l.iter().filter(|x| x.starts_with(r#"{"event":"token""#)).count(), 1);
}

#[test]
fn vault_commands_and_their_errors() {
    let vault = tmp("ops.sqlite");
    let _ = std::fs::remove_file(&vault);
    let mut key = vault.clone().into_os_string();
    key.push(".key");
    let _ = std::fs::remove_file(&key);
    // Revealing from a vault that does not exist creates nothing.
    let out = vault_cmd(&vault, &["reveal", "tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaa"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no vault here"));
    assert!(!vault.exists());

    let (pcm, _) = keyed(8000, "5555555555554444#0130#789#");
    let input = tmp("ops.wav");
    write_wav(&input, Encoding::Pcm16, 8000, &[pcm]);
    let out = capture(&input, &vault, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("created development key file"), "warns once");
    let token = token_of(&out);
    let out = capture(&input, &vault, &[]);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = token_of(&out);
    assert_ne!(token, second);

    let one_line_error = |out: &Output, code: i32, text: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(text), "{err}");
        assert!(out.stdout.is_empty());
    };
    one_line_error(&vault_cmd(&vault, &["reveal", "tok_nope"]), 1, "not a cardveil token");
    let mut typo = token.clone().into_bytes();
    typo[8] = if typo[8] == b'a' { b'b' } else { b'a' };
    one_line_error(&vault_cmd(&vault, &["reveal", std::str::from_utf8(&typo).unwrap()]), 1, "check characters");
    one_line_error(&vault_cmd(&vault, &["reveal"]), 2, "required arguments");
    one_line_error(&vault_cmd(&vault, &["explode"]), 2, "explode");

    let out = vault_cmd(&vault, &["rotate"]);
    assert_eq!(lines(&out), vec![r#"{"event":"rotated","kek_version":2,"records":2}"#.to_owned()]);
    assert_eq!(String::from_utf8(vault_cmd(&vault, &["reveal", &token]).stdout).unwrap(), "5555555555554444\n");
    assert_eq!(
        lines(&vault_cmd(&vault, &["delete", &token])),
        vec![format!(r#"{{"event":"deleted","token":"{token}"}}"#)]
    );
    one_line_error(&vault_cmd(&vault, &["reveal", &token]), 1, "unknown token");
    assert_eq!(lines(&vault_cmd(&vault, &["purge"])), vec![r#"{"event":"purged","records":0}"#.to_owned()]);
    let out = vault_cmd(&vault, &["audit", "verify"]);
    // 2 tokenize, 2 malformed reveals, rotate, reveal, delete, reveal refused, purge.
    assert_eq!(lines(&out), vec![r#"{"event":"audit","status":"ok","records":9}"#.to_owned()]);

    // Tampering with the audit trail is found.
    let c = rusqlite::Connection::open(&vault).unwrap();
    c.execute("UPDATE cardveil_audit SET actor = 'someone else' WHERE seq = 2", []).unwrap();
    drop(c);
    one_line_error(&vault_cmd(&vault, &["audit", "verify"]), 1, "audit chain broken at record 2");

    // A wrong key file is refused before anything is read.
    std::fs::write(&key, format!("2 {}\n", "ab".repeat(32))).unwrap();
    one_line_error(&vault_cmd(&vault, &["purge"]), 1, "does not open this vault");
    // A bad --capture list is a usage error, and no output file is left.
    let out =
        bin().arg("mask").arg(&input).arg("-o").arg(tmp("never.wav")).args(["--capture", "pan,pin"]).output().unwrap();
    one_line_error(&out, 2, "unknown --capture field 'pin'");
    assert!(!tmp("never.wav").exists());
}
