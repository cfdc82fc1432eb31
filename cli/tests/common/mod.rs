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

/// The value of `"name":` in a one-line JSON object (up to the next `,` or `}`).
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &line[at..];
    Some(&rest[..rest.find([',', '}'])?])
}

/// stdout's lines.
pub fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(str::to_string).collect()
}
