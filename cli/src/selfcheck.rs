//! The self-check of a scrubbed output, independent of the pass that made
//! it: the output is read back and analysed from scratch.
//!
//! * A WAV: every channel through the strict detector and through a fresh
//!   masker's candidate test (anything it would mask is a finding).
//! * A capture: every telephone-event must carry the fixed code (none may
//!   be left when events were dropped), every SIP INFO DTMF body the fixed
//!   key, and the G.711 audio of every UDP 5-tuple, in packet order, goes
//!   through the strict detector and the masker as a WAV's would.
//!
//! Findings are counts, never keys. The SHA-256 of the bytes read comes
//! with them, so the manifest's hash is of what was checked.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use cardveil_core::codec::{Encoding, alaw, ulaw};
use cardveil_core::dtmf::{Detector, DetectorConfig, DetectorEvent, Profile};
use cardveil_core::mask::{Masker, MaskerConfig, MaskerEvent};
use cardveil_core::pcap::file::{Item, Reader};
use cardveil_core::pcap::net::find_udp;
use cardveil_core::rtp::{
    EventAction, PT_PCMA, PT_PCMU, RtpHeader, RtpStreamConfig, TelephoneEvent, event_key, scrub_message_in_place,
};

use crate::CliError;

/// What the self-check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Findings {
    /// Keys the strict detector reports in the audio.
    pub keys: usize,
    /// Spans a fresh masker would mask in the audio.
    pub candidates: usize,
    /// Telephone-events that still carry a key other than the fixed one
    /// (any key, when events were dropped).
    pub events: usize,
    /// SIP INFO DTMF bodies with a key other than the fixed one.
    pub sip_info: usize,
}

impl Findings {
    /// Whether nothing was found.
    pub fn clean(&self) -> bool {
        *self == Findings::default()
    }
}

/// A reader that hashes what passes through it.
pub struct Hashing<R> {
    inner: R,
    hash: ring::digest::Context,
}

impl<R> std::fmt::Debug for Hashing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashing").finish_non_exhaustive()
    }
}

impl<R: Read> Hashing<R> {
    /// Hashes (SHA-256) everything read from `inner`.
    pub fn new(inner: R) -> Hashing<R> {
        Hashing { inner, hash: ring::digest::Context::new(&ring::digest::SHA256) }
    }

    /// Reads the rest of the stream (a WAV reader may stop before the end)
    /// and returns the hash of it all, in hex.
    pub fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(crate::hex::encode(self.hash.finish().as_ref()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    crate::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// One audio stream's analysis: a fresh masker, and the strict detector
/// unless the caller runs one already.
struct Audio {
    detector: Option<Detector>,
    masker: Masker,
    scratch: Vec<i16>,
    findings: Findings,
}

impl Audio {
    fn new(rate: u32, profile: Profile, detect: bool) -> Audio {
        let config = MaskerConfig { sample_rate: rate, encoding: Encoding::Pcm16, profile, ..MaskerConfig::default() };
        let detector = DetectorConfig { sample_rate: rate, profile };
        Audio {
            detector: detect.then(|| Detector::new(detector).expect("a rate the reader accepted")),
            masker: Masker::new(config).expect("a rate the reader accepted"),
            scratch: Vec::new(),
            findings: Findings::default(),
        }
    }

    fn feed(&mut self, pcm: &[i16]) {
        let Audio { detector, masker, scratch, findings } = self;
        if let Some(d) = detector {
            d.process(pcm, &mut |e| {
                if let DetectorEvent::Up(_) = e {
                    findings.keys += 1;
                }
            });
        }
        scratch.clear();
        scratch.extend_from_slice(pcm);
        masker
            .process_pcm16(scratch, |e| {
                if let MaskerEvent::Masked(_) = e {
                    findings.candidates += 1;
                }
            })
            .expect("a PCM16 masker");
    }

    fn finish(mut self) -> Findings {
        let Audio { detector, masker, findings, .. } = &mut self;
        if let Some(d) = detector {
            d.finish(&mut |e| {
                if let DetectorEvent::Up(_) = e {
                    findings.keys += 1;
                }
            });
        }
        masker.finish(|e| {
            if let MaskerEvent::Masked(_) = e {
                findings.candidates += 1;
            }
        });
        self.findings
    }
}

/// Checks a WAV stream; the findings and the hash of the bytes.
///
/// # Errors
/// [`CliError::Input`] naming `name` if it is not a WAV cardveil reads.
pub fn check_wav(input: impl Read, name: &Path, profile: Profile) -> Result<(Findings, String), CliError> {
    let mut hashing = Hashing::new(input);
    let mut audio: Vec<Audio> = Vec::new();
    let found = crate::detect::detect_stream(&mut hashing, name, profile, |format, pcm, n| {
        if audio.is_empty() {
            audio = pcm.iter().map(|_| Audio::new(format.sample_rate, profile, false)).collect();
        }
        for (a, ch) in audio.iter_mut().zip(pcm) {
            a.feed(&ch[..n]);
        }
    })?;
    let mut findings = Findings::default();
    for a in audio {
        findings.candidates += a.finish().candidates;
    }
    findings.keys = found.presses.iter().map(Vec::len).sum();
    let hash = hashing.finish().map_err(|e| CliError::input(name, format!("cannot read: {e}")))?;
    Ok((findings, hash))
}

/// Checks a capture read as a stream (see the module docs); the findings
/// and the hash of the bytes.
///
/// # Errors
/// [`CliError::Input`] naming `name` if it does not parse.
pub fn check_capture(input: impl Read, name: &Path, stream: &RtpStreamConfig) -> Result<(Findings, String), CliError> {
    let mut hashing = Hashing::new(input);
    let mut reader = Reader::new(&mut hashing).map_err(|e| CliError::input(name, e))?;
    let mut findings = Findings::default();
    let fixed = match stream.event_action {
        EventAction::Neutralise(code) => Some(code),
        _ => None,
    };
    let fixed_key = fixed.and_then(event_key).unwrap_or(cardveil_core::dtmf::Key::D);
    let mut audio: HashMap<(SocketAddr, SocketAddr), Audio> = HashMap::new();
    let mut pcm = Vec::new();
    while let Some(item) = reader.next_item().map_err(|e| CliError::input(name, e))? {
        let Item::Packet { raw, data, link_type, .. } = item else { continue };
        let frame = &raw[data];
        let Some(udp) = find_udp(link_type, frame) else { continue };
        let payload = &frame[udp.payload.clone()];
        if payload.starts_with(b"INFO ") {
            // Scrubbing again changes nothing unless a key other than the fixed one is left.
            let mut copy = payload.to_vec();
            scrub_message_in_place(&mut copy, fixed_key);
            findings.sip_info += (copy != payload) as usize;
            continue;
        }
        let Ok(h) = RtpHeader::parse(payload) else { continue };
        let body = h.payload(payload);
        if h.payload_type == stream.event_payload_type && body.len() % 4 == 0 {
            for block in body.chunks_exact(4) {
                let Some(e) = TelephoneEvent::parse(block) else { continue };
                if e.key().is_some() && Some(e.event) != fixed {
                    findings.events += 1;
                }
            }
            continue;
        }
        let encoding = match h.payload_type {
            PT_PCMU => Encoding::Ulaw,
            PT_PCMA => Encoding::Alaw,
            _ => continue,
        };
        pcm.resize(body.len(), 0);
        match encoding {
            Encoding::Ulaw => ulaw::decode_into(body, &mut pcm),
            _ => alaw::decode_into(body, &mut pcm),
        }
        let a = audio.entry((udp.src, udp.dst)).or_insert_with(|| Audio::new(8000, stream.masker.profile, true));
        a.feed(&pcm);
    }
    for a in audio.into_values() {
        let f = a.finish();
        findings.keys += f.keys;
        findings.candidates += f.candidates;
    }
    drop(reader);
    let hash = hashing.finish().map_err(|e| CliError::input(name, format!("cannot read: {e}")))?;
    Ok((findings, hash))
}
