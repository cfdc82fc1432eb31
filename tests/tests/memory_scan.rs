//! After a capture completes and its PAN is tokenized, the PAN's digits are
//! nowhere in the process's memory: a child process captures a card from
//! audio, tokenizes it, and waits; this test reads every writable mapping of
//! the child (/proc/PID/maps + /proc/PID/mem) looking for the PAN as ASCII
//! and as one-byte digits. A child told to keep a copy (positive control)
//! must be caught, or the scan proves nothing.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};

use cardveil_cli::example::keyed;

const PAN: &str = "4539148803436467";

/// Occurrences of the PAN (ASCII, one-byte digits) in `pid`'s writable memory.
fn scan(pid: u32) -> (usize, usize, usize) {
    let ascii = PAN.as_bytes().to_vec();
    let digits: Vec<u8> = ascii.iter().map(|b| b - b'0').collect();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let (mut found_ascii, mut found_digits, mut scanned) = (0, 0, 0);
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (range, perms) = (parts.next().unwrap(), parts.next().unwrap());
        if !perms.starts_with("rw") {
            continue;
        }
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (u64::from_str_radix(lo, 16).unwrap(), u64::from_str_radix(hi, 16).unwrap());
        let mut buf = vec![0u8; (hi - lo) as usize];
        if mem.seek(SeekFrom::Start(lo)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue; // e.g. [vvar]
        }
        scanned += buf.len();
        found_ascii += buf.windows(16).filter(|w| *w == ascii.as_slice()).count();
        found_digits += buf.windows(16).filter(|w| *w == digits.as_slice()).count();
    }
    (found_ascii, found_digits, scanned)
}

fn run_probe(leak: bool) -> (usize, usize, usize) {
    let dir = std::env::temp_dir().join(format!("cardveil-memscan-{}-{leak}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (pcm, _) = keyed(8000, &format!("{PAN}#1229#123#"));
    let wav = dir.join("card.wav");
    let mut data = cardveil_core::codec::wav::header(
        cardveil_core::codec::wav::WavFormat {
            encoding: cardveil_core::codec::Encoding::Pcm16,
            sample_rate: 8000,
            channels: 1,
        },
        pcm.len() as u32 * 2,
    );
    data.extend(pcm.iter().flat_map(|s| s.to_le_bytes()));
    std::fs::write(&wav, data).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capture_probe"));
    cmd.arg(&wav).arg(&dir);
    if leak {
        cmd.arg("--leak");
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready tok_"), "{line}");
    let found = scan(child.id());
    child.stdin.as_mut().unwrap().write_all(b"done").unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // The vault's files hold no PAN either.
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "wav") {
            continue;
        }
        let b = std::fs::read(&p).unwrap();
        assert!(!b.windows(16).any(|w| w == PAN.as_bytes()), "{} holds the PAN", p.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
    found
}

#[test]
fn the_pan_is_not_in_memory_after_capture_and_tokenization() {
    if std::fs::metadata("/proc/self/mem").is_err() {
        assert!(std::env::var_os("CI").is_none(), "/proc is required in CI");
        eprintln!("SKIPPED: no /proc");
        return;
    }
    let (a, d, scanned) = run_probe(true);
    assert!(d >= 1, "positive control: the kept copy was not found ({scanned} bytes scanned)");
    let (a2, d2, scanned2) = run_probe(false);
    println!(
        "control: {a} ASCII + {d} digit copies found in {scanned} bytes; capture: {a2} + {d2} in {scanned2} bytes"
    );
    assert_eq!((a2, d2), (0, 0), "the PAN is still in memory after capture and tokenization");
}
