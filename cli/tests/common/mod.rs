//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cardveil_core::codec::wav::{WavFormat, header};
use cardveil_core::codec::{Encoding, alaw, ulaw};

/// Every input format of SPEC: (encoding, sample rate).
pub const FORMATS: [(Encoding, u32); 5] = [
    (Encoding::Pcm16, 8000),
    (Encoding::Ulaw, 8000),
    (Encoding::Alaw, 8000),
    (Encoding::Pcm16, 16000),
    (Encoding::Pcm16, 48000),
];

/// The `cardveil` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cardveil"))
}

/// A path in a temporary directory of this test process, `group` apart.
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-cli-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes interleaved channels as a WAV file in `encoding`.
pub fn write_wav(path: &Path, encoding: Encoding, rate: u32, channels: &[Vec<i16>]) {
    let mut data = Vec::new();
    for i in 0..channels[0].len() {
        for ch in channels {
            match encoding {
                Encoding::Pcm16 => data.extend_from_slice(&ch[i].to_le_bytes()),
                Encoding::Ulaw => data.push(ulaw::encode(ch[i])),
                Encoding::Alaw => data.push(alaw::encode(ch[i])),
            }
        }
    }
    let format = WavFormat { encoding, sample_rate: rate, channels: channels.len() as u16 };
    let mut f = header(format, data.len() as u32);
    f.extend_from_slice(&data);
    std::fs::write(path, f).unwrap();
}

/// The value of `name` in a one-line JSON object, as JSON text (strings
/// keep their quotes). The line must parse as JSON (serde_json): a line
/// that does not is a failure, whatever it holds.
pub fn field(line: &str, name: &str) -> Option<String> {
    json(line).get(name).map(|v| v.to_string())
}

/// `line` parsed as one JSON object; panics (fails the test) otherwise.
pub fn json(line: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(m)) => m,
        other => panic!("not one JSON object ({other:?}): {line}"),
    }
}

/// stdout's lines, each checked to be one JSON object.
pub fn lines(out: &Output) -> Vec<String> {
    let lines: Vec<String> = String::from_utf8(out.stdout.clone()).unwrap().lines().map(str::to_string).collect();
    for l in &lines {
        json(l);
    }
    lines
}
