//! Test helper for the memory scan: captures a card from a mono 8 kHz PCM16
//! WAV through a `Call`, tokenizes it on the worker into a SQLite vault in
//! DIR, lets the CVV's TTL run out, prints `ready TOKEN`, and waits for
//! stdin to close so the test can scan this process's memory for the PAN.
//! It never sees the PAN other than as audio.
//!
//! `capture_probe IN.wav DIR [--leak]` — `--leak` keeps a copy of the
//! captured PAN's digits on purpose: the scan's positive control.

use std::io::Read;
use std::time::Duration;

use cardveil_core::call::{Call, CallConfig};
use cardveil_core::capture::{CaptureConfig, CaptureEvent};
use cardveil_core::codec::wav;
use cardveil_core::mask::MaskerConfig;
use cardveil_core::vault::{Done, SqliteStore, StoreVault, VaultConfig, Worker, keyfile};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, dir, leak) = match &args[1..] {
        [i, d] => (i, d, false),
        [i, d, l] if l == "--leak" => (i, d, true),
        _ => {
            eprintln!("usage: capture_probe IN.wav DIR [--leak]");
            std::process::exit(2);
        }
    };
    let dir = std::path::Path::new(dir);
    let bytes = std::fs::read(input).expect("read the WAV");
    let w = wav::parse(&bytes).expect("a WAV");
    let mut pcm: Vec<i16> = w.data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    drop(bytes);

    let (keys, _) = keyfile::load_or_create(&dir.join("vault.key")).expect("key file");
    let store = SqliteStore::open(&dir.join("vault.sqlite")).expect("vault");
    let vault = StoreVault::open(store, keys, VaultConfig::default()).expect("vault");
    let worker = Worker::spawn(Box::new(vault), "probe", Duration::from_millis(300)).expect("worker");
    let config = CallConfig { masker: MaskerConfig::default(), capture: CaptureConfig::standard(8000, (2026, 11)) };
    let mut call = Call::new(config).expect("call");
    call.begin_capture();
    let mut leaked: Option<&'static [u8]> = None;
    for frame in pcm.chunks_mut(160) {
        call.caller.process(frame, &mut |_| {}).expect("frame");
        while let Some(e) = call.poll() {
            if e == CaptureEvent::Complete {
                let card = Box::new(call.take_card().expect("card"));
                if leak {
                    let copy = card.pan.as_ref().expect("pan").expose().to_vec();
                    leaked = Some(Box::leak(copy.into_boxed_slice()));
                }
                worker.submit(1, card).expect("submit");
            }
        }
    }
    let token = match worker.wait(Duration::from_secs(30)) {
        Some(Done::Token { metadata, .. }) => metadata.token,
        other => panic!("no token: {other:?}"),
    };
    // The CVV's TTL (300 ms) runs out and the worker's sweep wipes it.
    std::thread::sleep(Duration::from_millis(1200));
    println!("ready {token} {}", leaked.map_or(0, <[u8]>::len));
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(worker);
}
