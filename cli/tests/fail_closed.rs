//! Fail closed at the command line: ambiguous files refused, nothing that
//! fails leaves an output, outputs never replace devices or follow links,
//! leftovers of killed runs cleaned up, and a card number typed where a
//! token belongs never reaches the vault, its audit chain or the screen.

mod common;

use std::path::Path;
use std::process::Output;

use common::{bin, tmp};

fn t(name: &str) -> std::path::PathBuf {
    tmp("fail-closed", name)
}

fn one_line_error(out: &Output, code: i32, text: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(text), "{err}");
}

/// A keyed example WAV (the test card 4111 1111 1111 1111).
fn example(name: &str) -> std::path::PathBuf {
    let path = t(name);
    let out = bin().arg("example").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn a_wav_with_two_fmt_chunks_is_refused_and_nothing_written() {
    let input = example("keyed.wav");
    let wav = std::fs::read(&input).unwrap();
    // A second fmt chunk (μ-law) before the data: which one counts is a guess.
    let mut two = wav[..36].to_vec();
    two.extend_from_slice(b"fmt \x12\0\0\0\x07\0\x01\0\x40\x1f\0\0\x40\x1f\0\0\x01\0\x08\0\0\0");
    two.extend_from_slice(&wav[36..]);
    let bad = t("two-fmt.wav");
    std::fs::write(&bad, &two).unwrap();
    let output = t("two-fmt-out.wav");
    let out = bin().arg("mask").arg(&bad).arg("-o").arg(&output).output().unwrap();
    one_line_error(&out, 1, "a second \"fmt \" chunk");
    assert!(!output.exists());
    let out = bin().arg("detect").arg(&bad).output().unwrap();
    one_line_error(&out, 1, "ambiguous WAV file");
}

#[test]
fn a_capture_without_a_pan_fails_before_anything_is_written() {
    let input = example("cvv.wav");
    let output = t("cvv-out.wav");
    let out = bin()
        .arg("mask")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["--capture", "cvv", "--vault"])
        .arg(t("cvv.sqlite"))
        .output()
        .unwrap();
    one_line_error(&out, 2, "has no pan");
    assert!(!output.exists());
    assert!(!t("cvv.sqlite").exists(), "no vault created either");
}

#[test]
fn devices_stay_devices_links_are_not_followed_and_leftovers_go() {
    let input = example("dev.wav");
    // Onto a device: written through, the node stays.
    let out = bin().arg("mask").arg(&input).arg("-o").arg("/dev/null").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::FileTypeExt;
    assert!(Path::new("/dev/null").metadata().unwrap().file_type().is_char_device());
    // Reading a device is refused at once (it would never end).
    one_line_error(&bin().arg("detect").arg("/dev/zero").output().unwrap(), 1, "a device");
    // A symlink planted at the output is refused; its target is untouched.
    let victim = t("victim.txt");
    std::fs::write(&victim, b"keep").unwrap();
    let link = t("planted.wav");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    one_line_error(&bin().arg("mask").arg(&input).arg("-o").arg(&link).output().unwrap(), 1, "symbolic link");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    // A run killed with SIGKILL leaves its temporary; the next run of the
    // same output removes it (the process it names is gone).
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let dead = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let output = t("out.wav");
    let leftover = t(&format!(".out.wav.cardveil-tmp-{dead}-0123456789abcdef"));
    std::fs::write(&leftover, b"half a masked file").unwrap();
    let out = bin().arg("mask").arg(&input).arg("-o").arg(&output).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!leftover.exists(), "the killed run's temporary is removed");
    use std::os::unix::fs::PermissionsExt;
    let mode = output.metadata().unwrap().permissions().mode();
    assert!(mode & 0o600 == 0o600 && mode & 0o022 == 0, "an ordinary file once whole: {mode:o}");
}

#[test]
fn vault_paths_in_dev_or_without_home_are_refused() {
    let input = example("home.wav");
    let mask = |envs: &[(&str, &str)], remove: &[&str]| {
        let mut c = bin();
        c.arg("mask").arg(&input).arg("-o").arg(t("home-out.wav")).args(["--capture", "pan,expiry,cvv"]);
        for k in remove {
            c.env_remove(k);
        }
        c.envs(envs.iter().copied()).current_dir(t("")).output().unwrap()
    };
    let out = mask(&[("CARDVEIL_VAULT", "/dev/null")], &[]);
    one_line_error(&out, 1, "under /dev");
    let out = mask(&[], &["HOME", "XDG_DATA_HOME", "CARDVEIL_VAULT"]);
    one_line_error(&out, 2, "HOME is not set");
    assert!(!t("cardveil").exists(), "nothing created in the current directory");
    assert!(!t("home-out.wav").exists());
}

#[test]
fn a_card_number_typed_as_a_token_never_reaches_the_vault() {
    let vault = t("pan-as-token.sqlite");
    let _ = std::fs::remove_file(&vault);
    let input = example("tokenize.wav");
    let out = bin()
        .arg("mask")
        .arg(&input)
        .arg("-o")
        .arg(t("tokenize-out.wav"))
        .args(["--capture", "pan,expiry,cvv", "--vault"])
        .arg(&vault)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for typed in ["4111111111111111", "5555555555554444", "1234567812345670"] {
        for op in ["reveal", "delete"] {
            let out = bin().args(["vault", op, typed, "--vault"]).arg(&vault).output().unwrap();
            one_line_error(&out, 1, "not a token");
            let all = [out.stdout, out.stderr].concat();
            assert!(!String::from_utf8_lossy(&all).contains(typed), "{op} {typed}: echoed");
        }
    }
    let out = bin().args(["vault", "audit", "verify", "--vault"]).arg(&vault).output().unwrap();
    assert!(out.status.success(), "the refusals are audited: {}", String::from_utf8_lossy(&out.stderr));
    // None of the refusals names what was typed in the audit trail.
    let c = rusqlite::Connection::open(&vault).unwrap();
    let refused: i64 = c
        .query_row("SELECT count(*) FROM cardveil_audit WHERE outcome LIKE 'refused%' AND token IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(refused, 6);

    // The exported head: a tail cut with the stored head rewritten to match
    // passes `audit verify` alone, not `audit verify --head`.
    let head_out = bin().args(["vault", "audit", "head", "--vault"]).arg(&vault).output().unwrap();
    let line = common::lines(&head_out).pop().expect("one line");
    let head = common::json(&line)["head"].as_str().unwrap().to_owned();
    let ok = bin().args(["vault", "audit", "verify", "--head", &head, "--vault"]).arg(&vault).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let (last, prev): (i64, Vec<u8>) = c
        .query_row("SELECT seq - 1, prev_hash FROM cardveil_audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let mut new_head = (last as u64).to_be_bytes().to_vec();
    new_head.extend_from_slice(&prev);
    c.execute("DELETE FROM cardveil_audit WHERE seq > ?1", [last]).unwrap();
    c.execute("UPDATE cardveil_meta SET value = ?1 WHERE key = 'audit_head'", [new_head]).unwrap();
    drop(c);
    let alone = bin().args(["vault", "audit", "verify", "--vault"]).arg(&vault).output().unwrap();
    assert!(alone.status.success(), "a cut tail looks whole to the vault alone");
    let out = bin().args(["vault", "audit", "verify", "--head", &head, "--vault"]).arg(&vault).output().unwrap();
    one_line_error(&out, 1, "exported head");
    let out = bin().args(["vault", "audit", "verify", "--head", "12:zz", "--vault"]).arg(&vault).output().unwrap();
    one_line_error(&out, 2, "SEQ:TAG");

    // A key file with a version this vault never registered (edited by
    // hand, or left by a rotation that failed): every operation refused,
    // nothing written; without the line the vault opens again.
    let key = {
        let mut k = vault.clone().into_os_string();
        k.push(".key");
        std::path::PathBuf::from(k)
    };
    let original = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, format!("{original}7 {}\n", "5a".repeat(32))).unwrap();
    let before = std::fs::read(&vault).unwrap();
    for args in [&["purge"][..], &["audit", "verify"], &["rotate"]] {
        let out = bin().arg("vault").args(args).arg("--vault").arg(&vault).output().unwrap();
        one_line_error(&out, 1, "not registered in this vault");
    }
    assert_eq!(std::fs::read(&vault).unwrap(), before, "nothing written");
    std::fs::write(&key, &original).unwrap();
    let out = bin().args(["vault", "purge", "--vault"]).arg(&vault).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `strings` over the vault (and SQLite's sidecars): no PAN anywhere.
    for f in std::fs::read_dir(t("")).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with("pan-as-token.sqlite") {
            let bytes = std::fs::read(f.path()).unwrap();
            for pan in ["4111111111111111", "5555555555554444", "1234567812345670"] {
                assert!(!bytes.windows(pan.len()).any(|w| w == pan.as_bytes()), "{pan} in {name}");
            }
        }
    }
}

/// The temporaries of `output` in its directory.
fn temporaries(output: &Path) -> Vec<std::path::PathBuf> {
    let prefix = format!(".{}.cardveil-tmp-", output.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Starts `cardveil mask input -o output` and sends `signal` the moment its
/// temporary output appears; whether it was caught writing (bounded tries).
fn interrupt_while_writing(input: &Path, output: &Path, signal: i32) -> bool {
    for _ in 0..8 {
        let _ = std::fs::remove_file(output);
        let mut child =
            bin().arg("mask").arg(input).arg("-o").arg(output).stdout(std::process::Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut caught = false;
        while std::time::Instant::now() < deadline {
            if !temporaries(output).is_empty() {
                // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
                unsafe { libc::kill(child.id() as i32, signal) };
                caught = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let status = child.wait().unwrap();
        if caught {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(signal), "ended by the signal");
            return true;
        }
    }
    false
}

#[test]
fn interrupted_and_killed_runs_leave_nothing_behind() {
    // Two hours of 8 kHz audio: its output takes long enough to write to be caught at it.
    let input = t("long.wav");
    let samples = 2 * 3600 * 8000usize;
    let mut f = cardveil_core::codec::wav::header(
        cardveil_core::codec::wav::WavFormat {
            encoding: cardveil_core::codec::Encoding::Pcm16,
            sample_rate: 8000,
            channels: 1,
        },
        (samples * 2) as u32,
    );
    f.resize(f.len() + samples * 2, 0);
    std::fs::write(&input, &f).unwrap();
    drop(f);
    let output = t("long-out.wav");
    // SIGTERM (and SIGINT alike): the temporary is removed, no output.
    assert!(interrupt_while_writing(&input, &output, libc::SIGTERM), "never caught writing");
    assert!(temporaries(&output).is_empty(), "SIGTERM left {:?}", temporaries(&output));
    assert!(!output.exists());
    // SIGKILL cannot be handled: its temporary stays — until the next run of the same output.
    assert!(interrupt_while_writing(&input, &output, libc::SIGKILL), "never caught writing");
    assert_eq!(temporaries(&output).len(), 1, "the killed run's temporary");
    let out =
        bin().arg("mask").arg(&input).arg("-o").arg(&output).stdout(std::process::Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(temporaries(&output).is_empty(), "removed by the next run");
    assert_eq!(std::fs::metadata(&output).unwrap().len(), std::fs::metadata(&input).unwrap().len());
    for p in [&input, &output] {
        let _ = std::fs::remove_file(p);
    }
}
