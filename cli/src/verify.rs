//! `cardveil verify --manifest PATH [--public-key FILE] [--out-dir DIR]`:
//! an assessor's check of a scrub. Every entry's place in the hash chain
//! and (with `--public-key`) its signature; every output re-hashed and
//! re-checked by [`crate::selfcheck`] with the settings its entry names (an
//! entry superseded by a later one for the same output — the file was
//! scrubbed again — keeps only its place in the chain to check).
//! One JSON line per entry that does not hold, a summary line; exit 0 only
//! if every entry holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use cardveil_core::dtmf::Profile;
use cardveil_core::mask::{MaskMode, MaskerConfig};
use cardveil_core::rtp::{EventAction, RtpStreamConfig};

use crate::CliError;
use crate::json::Obj;
use crate::manifest::{check_line, read};
use crate::selfcheck::{check_capture, check_wav};
use crate::sign::Verifier;

/// `cardveil verify` arguments.
#[derive(Debug)]
pub struct VerifyArgs<'a> {
    /// The manifest.
    pub manifest: &'a Path,
    /// The public key file; without it signatures are not checked.
    pub public_key: Option<&'a Path>,
    /// Where the outputs are (default: the manifest's directory).
    pub out_dir: Option<&'a Path>,
}

/// The stream settings an entry's `"settings"` names (see
/// [`crate::scrub::settings_text`]).
pub fn parse_settings(text: &str) -> Option<RtpStreamConfig> {
    let mut c = RtpStreamConfig::default();
    let mut masker = MaskerConfig::default();
    for item in text.split(' ') {
        let (k, v) = item.split_once('=')?;
        match k {
            "mode" => masker.mode = MaskMode::from_name(v)?,
            "lookahead_ms" => masker.lookahead_ms = v.parse().ok()?,
            "profile" => masker.profile = Profile::from_name(v)?,
            "events" => {
                c.event_action = match v.split_once(':') {
                    Some(("neutralise", code)) => EventAction::Neutralise(code.parse().ok()?),
                    None if v == "drop" => EventAction::Drop,
                    _ => return None,
                }
            }
            "event_pt" => c.event_payload_type = v.parse().ok()?,
            "rtp_ports" => {}
            _ => return None,
        }
    }
    c.masker = masker;
    Some(c)
}

/// Why one entry does not hold, if it does not.
fn check_entry(
    line: &str,
    m: &serde_json::Map<String, serde_json::Value>,
    prev: Option<&str>,
    verifier: Option<&Verifier>,
    out_dir: &Path,
) -> Option<String> {
    if let Some(why) = check_line(line, prev, verifier) {
        return Some(why);
    }
    let field = |k: &str| m.get(k).and_then(|v| v.as_str());
    let (Some(output), Some(want), Some(format), Some(settings)) =
        (field("output"), field("output_sha256"), field("format"), field("settings"))
    else {
        return Some("not a scrub entry (output, output_sha256, format or settings missing)".into());
    };
    if field("self_check") != Some("pass") {
        return Some("its self-check did not pass when it was scrubbed".into());
    }
    let Some(stream) = parse_settings(settings) else { return Some(format!("settings '{settings}' unknown")) };
    let rel = Path::new(output);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Some("its output path leaves the output directory".into());
    }
    let path: PathBuf = out_dir.join(rel);
    let file = match std::fs::File::open(&path) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => return Some(format!("output {}: cannot read: {e}", path.display())),
    };
    let checked = match format {
        "wav" => check_wav(file, &path, stream.masker.profile),
        "pcap" | "pcapng" => check_capture(file, &path, &stream),
        other => return Some(format!("format '{other}' unknown")),
    };
    let (findings, hash) = match checked {
        Ok(r) => r,
        Err(e) => return Some(format!("output does not read back: {e}")),
    };
    if hash != want {
        return Some("the output's SHA-256 is not the manifest's (the file was changed)".into());
    }
    (!findings.clean()).then(|| {
        format!(
            "the self-check finds {} keys, {} spans to mask, {} telephone-events, {} SIP INFO bodies",
            findings.keys, findings.candidates, findings.events, findings.sip_info
        )
    })
}

/// Runs `cardveil verify`.
pub fn run(args: &VerifyArgs<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let verifier = args.public_key.map(Verifier::load).transpose()?;
    let (lines, complete) = read(args.manifest)?;
    let whole = std::fs::metadata(args.manifest).map(|m| m.len()).unwrap_or(0);
    let out_dir = match args.out_dir {
        Some(d) => d.to_owned(),
        None => args.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned(),
    };
    let io = |e: std::io::Error| CliError::input(Path::new("<stdout>"), e);
    // A file scrubbed again (its input changed, or the settings) has a newer
    // entry: the older one keeps its place in the chain, but its output is gone.
    let output_of =
        |m: &serde_json::Map<String, serde_json::Value>| m.get("output").and_then(|v| v.as_str()).map(str::to_owned);
    let mut latest = std::collections::HashMap::new();
    for (n, (_, m)) in lines.iter().enumerate() {
        if let Some(o) = output_of(m) {
            latest.insert(o, n);
        }
    }
    let mut failed = 0;
    let mut superseded = 0;
    let mut prev: Option<&str> = None;
    for (n, (line, m)) in lines.iter().enumerate() {
        let current = output_of(m).is_none_or(|o| latest.get(&o) == Some(&n));
        superseded += !current as usize;
        let why = if current {
            check_entry(line, m, prev, verifier.as_ref(), &out_dir)
        } else {
            check_line(line, prev, verifier.as_ref())
        };
        if let Some(why) = why {
            failed += 1;
            let output = m.get("output").and_then(|v| v.as_str()).unwrap_or("");
            let l = Obj::event("failed").count("line", n + 1).str("output", output).str("error", &why);
            writeln!(out, "{}", l.finish()).map_err(io)?;
        }
        prev = Some(line);
    }
    if (complete as u64) < whole {
        failed += 1;
        let l = Obj::event("failed").count("line", lines.len() + 1).str("error", "a line cut short (no newline)");
        writeln!(out, "{}", l.finish()).map_err(io)?;
    }
    let summary = Obj::event("verify")
        .count("entries", lines.len())
        .count("superseded", superseded)
        .count("failed", failed)
        .str("signatures", if verifier.is_some() { "checked" } else { "not checked (no --public-key)" });
    writeln!(out, "{}", summary.finish()).map_err(io)?;
    if lines.is_empty() {
        return Err(CliError::input(args.manifest, "no entries"));
    }
    if failed > 0 {
        return Err(CliError::input(args.manifest, format!("{failed} of {} entries do not hold", lines.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip() {
        let mut stream = RtpStreamConfig::default();
        stream.masker.mode = MaskMode::Noise;
        stream.masker.lookahead_ms = 40;
        stream.event_action = EventAction::Neutralise(12);
        stream.event_payload_type = 96;
        let text = crate::scrub::settings_text(&stream, &[4000, 4002]);
        let back = parse_settings(&text).unwrap();
        assert_eq!(back.masker, stream.masker);
        assert_eq!((back.event_action, back.event_payload_type), (stream.event_action, 96));
        stream.event_action = EventAction::Drop;
        assert_eq!(parse_settings(&crate::scrub::settings_text(&stream, &[])).unwrap().event_action, EventAction::Drop);
        assert!(parse_settings("mode=loud").is_none());
    }
}
